"""Test helpers shared by every layer's tests: tolerances, random symmetry operations, equivariance.

Modelled on ``e3nn.util.test``: each helper works in float64 unless told otherwise, so that a
failure points at the layer rather than at rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from e3nn import o3

from irrepscope.model.dtype import default_dtype

# The five models the paper's Table 1 and the training benchmark name: (orders L, h, number of
# parameters counted on the authors' reference code).
REFERENCE_MODELS: list[tuple[list[int], int, int]] = [
    ([0, 1, 2], 32, 1_648_034),
    ([0, 1, 2, 3, 4], 16, 778_066),
    ([0, 1, 2, 3, 4, 5, 6], 16, 1_859_410),
    ([0, 3, 4, 5, 6], 16, 827_218),
    ([0, 1, 2, 10], 32, 2_631_074),
]


def message_block_irreps(orders: list[int], hidden: int,
                         block: str) -> tuple[o3.Irreps, o3.Irreps, o3.Irreps]:
    """(irreps_in, irreps_sh, irreps_out) of the model's 'input' (64x0e in) or 'hidden' block."""
    def every_order(mul: int) -> o3.Irreps:
        return o3.Irreps("+".join(f"{mul}x{lo}{'e' if lo % 2 == 0 else 'o'}" for lo in orders))

    out = every_order(hidden)
    return (o3.Irreps("64x0e") if block == "input" else out), every_order(1), out


def float64_message_pair(kind: str, irreps_in: o3.Irreps | str, irreps_sh: o3.Irreps | str,
                         irreps_out: o3.Irreps | str, radial_hidden: int, seed: int = 0,
                         num_basis: int = 20) -> tuple[Any, Any]:
    """A float64 e3nn message step (random weights) and a ``kind`` one loaded to equal it."""
    from irrepscope.model.message import E3nnEdgeMessage
    from irrepscope.model.message_steps import convert_state_dict, make_edge_message

    torch.manual_seed(seed)
    with default_dtype(torch.float64):  # coefficients are built in the default dtype
        reference = E3nnEdgeMessage(irreps_in, irreps_sh, irreps_out, num_basis, radial_hidden)
        other = make_edge_message(kind, irreps_in, irreps_sh, irreps_out, num_basis,
                                  radial_hidden)
    other.load_state_dict(convert_state_dict(reference, to=kind))  # strict
    return reference, other


def random_message_inputs(message: Any, num_edges: int = 7, seed: int = 1,
                          num_basis: int = 20) -> list[torch.Tensor]:
    """Float64 [x, sh, radial basis] for an ``EdgeMessage``, all requiring gradients."""
    g = torch.Generator().manual_seed(seed)
    dims = (message.irreps_in.dim, message.irreps_sh.dim, num_basis)
    return [torch.randn(num_edges, d, generator=g, dtype=torch.float64).requires_grad_()
            for d in dims]


def assert_messages_agree(reference: Any, other: Any, inputs: list[torch.Tensor], atol: float,
                          weight_out_columns: torch.Tensor | None = None) -> None:
    """Two message steps agree in output and in gradients of inputs and of (weight_in, weight_out).

    ``weight_out_columns``: ``other``'s weight_out holds these columns of the reference's (a
    permuted layout); None for the same layout.
    """
    expected, actual = reference(*inputs), other(*inputs)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)
    cotangent = torch.randn_like(expected)
    grads_ref = list(torch.autograd.grad(expected, [*inputs, *reference.parameters()], cotangent))
    grads = torch.autograd.grad(actual, [*inputs, *other.parameters()], cotangent)
    assert len(grads) == len(grads_ref) == len(inputs) + 2
    if weight_out_columns is not None:
        grads_ref[-1] = grads_ref[-1][:, weight_out_columns]
    for name, g_ref, g in zip(["x", "sh", "basis", "weight_in", "weight_out"], grads_ref, grads,
                              strict=True):
        torch.testing.assert_close(g, g_ref, atol=atol, rtol=0, msg=f"gradient of {name}")


def energies_and_gradients(model: Any, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Energies of ``batch`` and gradients of a fixed weighted energy sum: {'pos', parameters}."""
    batch = batch.clone()
    batch.pos = batch.pos.clone().requires_grad_()
    energy = model(batch)
    weights = torch.linspace(-1.0, 2.0, energy.numel(), dtype=energy.dtype,
                             device=energy.device)
    names = ["pos", *[name for name, _ in model.named_parameters()]]
    grads = torch.autograd.grad((energy * weights).sum(), [batch.pos, *model.parameters()])
    return energy, dict(zip(names, grads, strict=True))


def assert_fused_model_agrees(reference: Any, fused: Any, batch: Any, atol: float) -> None:
    """A model in e3nn's weight layout and its fused-build copy agree on energies, forces and
    every parameter gradient (a fused message step's weight_out gradient is column-permuted)."""
    from irrepscope.model.tensor_product import FusedEdgeMessage

    energy_ref, grads_ref = energies_and_gradients(reference, batch)
    energy, grads = energies_and_gradients(fused, batch)
    torch.testing.assert_close(energy, energy_ref, atol=atol, rtol=0)
    for name, module in fused.named_modules():
        if isinstance(module, FusedEdgeMessage):
            grads_ref[f"{name}.weight_in"] = grads_ref.pop(f"{name}.radial.weight_in")
            grads_ref[f"{name}.weight_out"] = grads_ref.pop(
                f"{name}.radial.weight_out")[:, module.column_permutation]
    assert grads.keys() == grads_ref.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, grads_ref[name], atol=atol, rtol=0, msg=name)


def tolerance(dtype: torch.dtype) -> float:
    """Absolute tolerance for an O(1) quantity computed in ``dtype``."""
    return {
        torch.float64: 1e-10,
        torch.float32: 1e-4,
        torch.float16: 5e-2,
        torch.bfloat16: 1e-1,
    }[dtype]


def random_rotation(
    dtype: torch.dtype = torch.float64, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A uniformly random proper rotation matrix, shape [3, 3]."""
    q = torch.randn(4, dtype=torch.float64, generator=generator)
    q = q / q.norm()
    return o3.quaternion_to_matrix(q).to(dtype)


def rotate_irreps(irreps: o3.Irreps | str, x: torch.Tensor, rotation: torch.Tensor,
                  parity: bool = False) -> torch.Tensor:
    """Apply rotation (and inversion when ``parity``) to features ``x`` [..., irreps.dim]."""
    irreps = o3.Irreps(irreps)
    matrix = rotation if not parity else -rotation
    with default_dtype(torch.float64):  # e3nn builds its SO(3) generators in the default dtype
        d = irreps.D_from_matrix(matrix.to(torch.float64)).to(x.dtype)
    return x @ d.T


def assert_equivariant(
    fn: Callable[[torch.Tensor], torch.Tensor],
    irreps_in: o3.Irreps | str,
    irreps_out: o3.Irreps | str,
    inputs: torch.Tensor,
    *,
    parity: bool = True,
    atol: float | None = None,
    trials: int = 3,
    seed: int = 0,
) -> None:
    """Check fn(D_in x) == D_out fn(x) for random rotations (and inversion) in ``inputs``' dtype."""
    atol = tolerance(inputs.dtype) if atol is None else atol
    generator = torch.Generator().manual_seed(seed)
    for trial in range(trials):
        rotation = random_rotation(generator=generator)
        for inversion in ([False, True] if parity else [False]):
            expected = rotate_irreps(irreps_out, fn(inputs), rotation, inversion)
            actual = fn(rotate_irreps(irreps_in, inputs, rotation, inversion))
            err = (expected - actual).abs().max().item() if actual.numel() else 0.0
            scale = max(1.0, expected.abs().max().item() if expected.numel() else 1.0)
            if err > atol * scale:
                raise AssertionError(
                    f"not equivariant (trial {trial}, inversion={inversion}): "
                    f"max |error| {err:.3e} > {atol * scale:.3e}"
                )


# --- molecule-level checks (PyG batches with z, pos, edge_index, batch) -----------------------
def permutation_within_molecules(molecule: torch.Tensor,
                                 generator: torch.Generator | None = None) -> torch.Tensor:
    """A random atom permutation [N] that keeps each atom in its molecule (batch vector sorted)."""
    key = molecule.to(torch.float64) + torch.rand(molecule.shape[0], dtype=torch.float64,
                                                  generator=generator).to(molecule.device)
    return torch.argsort(key)


def transform_molecules(batch: Any, rotation: torch.Tensor | None = None,
                        translation: torch.Tensor | None = None, inversion: bool = False,
                        permutation: torch.Tensor | None = None) -> Any:
    """Copy of a PyG batch: pos -> ±pos @ R^T + t, then atoms reordered (new i = old perm[i])."""
    out = batch.clone()
    pos = batch.pos.detach()
    if rotation is not None:
        pos = pos @ rotation.to(pos).T
    if inversion:
        pos = -pos
    if translation is not None:
        pos = pos + translation.to(pos)
    if permutation is not None:
        permutation = permutation.to(pos.device)
        inverse = torch.empty_like(permutation)
        inverse[permutation] = torch.arange(permutation.numel(), device=permutation.device)
        out.z = batch.z[permutation]
        pos = pos[permutation]
        out.edge_index = inverse[batch.edge_index]
        if getattr(batch, "batch", None) is not None:
            out.batch = batch.batch[permutation]
    out.pos = pos
    return out


def _random_symmetry(batch: Any, trial: int, generator: torch.Generator) -> dict[str, Any]:
    molecule = getattr(batch, "batch", None)
    if molecule is None:
        molecule = torch.zeros(batch.pos.shape[0], dtype=torch.long)
    return dict(rotation=random_rotation(generator=generator),
                translation=5.0 * torch.randn(3, dtype=torch.float64, generator=generator),
                inversion=trial % 2 == 1,
                permutation=permutation_within_molecules(molecule, generator))


def assert_energy_invariant(energy_fn: Callable[[Any], torch.Tensor], batch: Any, *,
                            rtol: float = 1e-9, trials: int = 2, seed: int = 0) -> None:
    """energy_fn(batch) [B] is unchanged by rotation, inversion, translation and permutation."""
    generator = torch.Generator().manual_seed(seed)
    reference = energy_fn(batch).detach()
    scale = max(1.0, reference.abs().max().item() if reference.numel() else 1.0)
    for trial in range(trials):
        ops = _random_symmetry(batch, trial, generator)
        for name in ("rotation", "translation", "inversion", "permutation", "all"):
            kwargs = ops if name == "all" else {name: ops[name]}
            if name == "inversion" and not ops["inversion"]:
                continue
            err = (energy_fn(transform_molecules(batch, **kwargs)).detach() - reference).abs()
            if err.numel() and err.max().item() > rtol * scale:
                raise AssertionError(f"energy not invariant under {name} (trial {trial}): "
                                     f"max |error| {err.max().item():.3e} > {rtol * scale:.3e}")


def forces(energy_fn: Callable[[Any], torch.Tensor], batch: Any) -> torch.Tensor:
    """-dE/dpos [N, 3] of energy_fn(batch) summed over molecules (eV/Å)."""
    batch = batch.clone()
    batch.pos = batch.pos.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy_fn(batch).sum(), batch.pos)
    return -grad


def assert_forces_equivariant(energy_fn: Callable[[Any], torch.Tensor], batch: Any, *,
                              rtol: float = 1e-9, trials: int = 2, seed: int = 0) -> None:
    """Forces rotate (and invert) with the molecule, ignore translation, follow permutation."""
    generator = torch.Generator().manual_seed(seed)
    reference = forces(energy_fn, batch)
    scale = max(1.0, reference.abs().max().item())
    for trial in range(trials):
        ops = _random_symmetry(batch, trial, generator)
        expected = reference @ ops["rotation"].to(reference).T
        expected = (-expected if ops["inversion"] else expected)[ops["permutation"].to(
            reference.device)]
        err = (forces(energy_fn, transform_molecules(batch, **ops)) - expected).abs().max().item()
        if err > rtol * scale:
            raise AssertionError(f"forces not equivariant (trial {trial}): max |error| "
                                 f"{err:.3e} > {rtol * scale:.3e}")


def assert_outputs_equivariant(outputs_fn: Callable[[Any], dict[str, torch.Tensor]], batch: Any,
                               irreps: dict[str, o3.Irreps | str], per_atom: Iterable[str] = (),
                               *, atol: float = 1e-10, trials: int = 2, seed: int = 0) -> None:
    """Molecule outputs ``outputs_fn(batch)[name]`` [M or N, irreps.dim] rotate (and invert) by
    D(R) of their irreps, ignore translation, and (for the ``per_atom`` ones) follow a
    permutation of the atoms."""
    generator = torch.Generator().manual_seed(seed)
    reference = {k: v.detach() for k, v in outputs_fn(batch).items()}
    per_atom = set(per_atom)
    for trial in range(trials):
        ops = _random_symmetry(batch, trial, generator)
        actual = outputs_fn(transform_molecules(batch, **ops))
        for name, ir in irreps.items():
            expected = rotate_irreps(ir, reference[name].reshape(reference[name].shape[0], -1),
                                     ops["rotation"], ops["inversion"])
            if name in per_atom:
                expected = expected[ops["permutation"].to(expected.device)]
            got = actual[name].detach().reshape(expected.shape)
            err = (got - expected).abs().max().item() if got.numel() else 0.0
            scale = max(1.0, expected.abs().max().item() if expected.numel() else 1.0)
            if err > atol * scale:
                raise AssertionError(f"{name} not equivariant (trial {trial}): max |error| "
                                     f"{err:.3e} > {atol * scale:.3e}")
