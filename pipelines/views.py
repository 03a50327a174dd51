from django.http import HttpResponse


def deal_list(request, org_slug):
    return HttpResponse("deals")


def deal_detail(request, org_slug, pk):
    return HttpResponse("deal")
