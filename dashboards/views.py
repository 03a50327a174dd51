from django.http import HttpResponse


def dashboard(request, org_slug):
    return HttpResponse("dashboard")


def me(request, org_slug):
    return HttpResponse("me")
