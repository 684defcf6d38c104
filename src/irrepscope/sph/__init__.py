"""Closed-form real spherical harmonics l <= 10 in e3nn's conventions (see docs/conventions.md)."""

from irrepscope.sph.api import backend_info, spherical_harmonics
from irrepscope.sph.e3nn_patch import e3nn_patched, patch_e3nn, unpatch_e3nn
from irrepscope.sph.orders import OrderSet, irreps_string, parse_orders

__all__ = ["OrderSet", "backend_info", "e3nn_patched", "irreps_string", "parse_orders",
           "patch_e3nn", "spherical_harmonics", "unpatch_e3nn"]
