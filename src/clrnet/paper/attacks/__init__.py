"""The paper's attack layer for training: differentiable simulations (``functional``) drawn
per batch (``layer``)."""

from clrnet.paper.attacks import functional
from clrnet.paper.attacks.layer import AttackDraw, AttackLayer, apply_attack, draw_attack

__all__ = ["AttackDraw", "AttackLayer", "apply_attack", "draw_attack", "functional"]
