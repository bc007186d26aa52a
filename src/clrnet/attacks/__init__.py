"""Attacks: differentiable simulations (:mod:`.functional`), the real operations
(:mod:`.real`) and the training attack layer (:mod:`.layer`)."""

from clrnet.paper.attacks import functional
from clrnet.paper.attacks.layer import AttackDraw, AttackLayer, apply_attack, draw_attack

__all__ = ["AttackDraw", "AttackLayer", "apply_attack", "draw_attack", "functional", "real"]
