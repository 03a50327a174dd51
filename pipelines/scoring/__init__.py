"""Win probability of open deals from a per-organization model, and the deals most at risk.

`win_probabilities` is the read other apps use (the forecast takes the model's
probability in place of the stage default where a deal has a current score).
"""

from pipelines.scoring.selectors import win_probabilities

__all__ = ["win_probabilities"]
