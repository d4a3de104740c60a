"""Where latent codes are drawn from when sampling: the model's own prior, the one the KL term
pulls the posteriors toward ("standard": N(0, I), or for a hierarchical model z1 ~ N(0, I) and
z2 ~ p(z2 | z1); SequenceVAE.sample_prior), or the aggregate posterior, the codes the encoder
actually gives training sequences, fitted after training ("ex-post density estimation", Ghosh
et al. 2020, "From variational to deterministic autoencoders").

The aggregate prior is a Gaussian mixture with full covariances (one component: a single
full-covariance Gaussian) fitted by expectation-maximisation to codes z ~ q(z|x) of training
sequences. It is stored beside the model it belongs to, in the checkpoint folder:

    prior.safetensors   weights (K,), means (K, D), scale_tril (K, D, D) (Cholesky factors)
    prior.json          format, the SHA-256 of the model.safetensors it was fitted on, how

A prior fitted on other weights is refused: decoding codes from another model's latent space
would give meaningless samples without any error.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, DataError

PRIORS = ("standard", "aggregate")
PRIOR_FORMAT = "seqvae-prior"
PRIOR_VERSION = 1
PRIOR_JSON, PRIOR_TENSORS = "prior.json", "prior.safetensors"
# codes fitted by default: enough for a 64-dimensional full covariance per component (2,080
# free parameters each) many times over, and a few seconds of encoding on a CPU
DEFAULT_CODES = 20_000
DEFAULT_COMPONENTS = 1


@dataclass
class GaussianMixture:
    """A mixture of full-covariance Gaussians over latent codes (float64 parameters)."""

    weights: torch.Tensor  # (K,), summing to 1
    means: torch.Tensor  # (K, D)
    scale_tril: torch.Tensor  # (K, D, D), lower triangular with positive diagonal

    @property
    def components(self) -> int:
        """K."""
        return int(self.weights.numel())

    @property
    def dim(self) -> int:
        """D."""
        return int(self.means.shape[1])

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """n codes (float32, on device); the generator (a CPU or device one) makes them
        reproducible."""
        gen_device = generator.device if generator is not None else torch.device("cpu")
        which = torch.multinomial(self.weights.to(gen_device, torch.float32), n, replacement=True,
                                  generator=generator)
        eps = torch.randn(n, self.dim, generator=generator, device=gen_device,
                          dtype=torch.float64)
        which, eps = which.cpu(), eps.cpu()
        z = self.means[which] + torch.einsum("nij,nj->ni", self.scale_tril[which], eps)
        return z.to(device=device, dtype=torch.float32)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) under the mixture, per row (float64, nats)."""
        return torch.logsumexp(_component_log_probs(z.double().cpu(), self), dim=1)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The parameters as named tensors (for safetensors)."""
        return {"weights": self.weights, "means": self.means, "scale_tril": self.scale_tril}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], source: str) -> GaussianMixture:
        """Inverse of tensors(), checking the shapes agree; raises CheckpointError naming
        source."""
        try:
            weights, means, tril = (tensors[k].double() for k in ("weights", "means", "scale_tril"))
        except KeyError as missing:
            raise CheckpointError(f"{source} lacks the tensor {missing}; refit the prior") from None
        k, d = means.shape if means.dim() == 2 else (-1, -1)
        if weights.shape != (k,) or tril.shape != (k, d, d) or k < 1:
            raise CheckpointError(f"{source}: tensor shapes disagree (weights "
                                  f"{tuple(weights.shape)}, means {tuple(means.shape)}, "
                                  f"scale_tril {tuple(tril.shape)}); refit the prior")
        if not all(torch.isfinite(t).all() for t in (weights, means, tril)):
            raise CheckpointError(f"{source} holds NaN or infinite values; refit the prior")
        return cls(weights / weights.sum(), means, tril)


def _component_log_probs(z: torch.Tensor, mixture: GaussianMixture) -> torch.Tensor:
    """(N, K): log w_k + log N(z | mean_k, L_k L_k^T)."""
    n, d = z.shape
    out = torch.empty(n, mixture.components, dtype=torch.float64)
    for k in range(mixture.components):
        tril = mixture.scale_tril[k]
        diff = (z - mixture.means[k]).T  # (D, N)
        solved = torch.linalg.solve_triangular(tril, diff, upper=False)
        log_det = torch.log(torch.diagonal(tril)).sum()
        out[:, k] = (torch.log(mixture.weights[k]) - 0.5 * (solved ** 2).sum(0) - log_det
                     - 0.5 * d * math.log(2 * math.pi))
    return out


def _cholesky(cov: torch.Tensor, ridge: float) -> torch.Tensor:
    """Cholesky factor of cov + ridge * mean(diag) * I, the ridge grown until it factorises."""
    d = cov.shape[0]
    scale = float(torch.diagonal(cov).mean().clamp_min(1e-12))
    eye = torch.eye(d, dtype=cov.dtype)
    for attempt in range(8):
        tril, info = torch.linalg.cholesky_ex(cov + ridge * scale * 10 ** attempt * eye)
        if int(info) == 0:
            return tril
    raise DataError("the codes' covariance cannot be factorised (are they all the same?)")


def fit_mixture(codes: torch.Tensor, components: int = DEFAULT_COMPONENTS, iterations: int = 100,
                tol: float = 1e-5, ridge: float = 1e-6, seed: int = 0) -> GaussianMixture:
    """Fit a full-covariance Gaussian mixture to codes (N, D) by expectation-maximisation,
    started from k-means++ centres; one component is the closed-form Gaussian fit. ridge
    (relative to the mean variance) keeps each covariance positive definite."""
    z = torch.as_tensor(codes).detach().double().cpu()
    if z.dim() != 2 or len(z) < 2:
        raise DataError(f"codes must be an (N, D) array with N >= 2, got shape {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        raise DataError("codes hold NaN or infinite values")
    if not isinstance(components, int) or components < 1:
        raise DataError(f"components must be a positive integer, got {components!r}")
    n, d = z.shape
    if n < components * (d + 1):
        raise DataError(f"{n} codes are too few for {components} full-covariance components "
                        f"in {d} dimensions (at least {components * (d + 1)})")
    if components == 1:
        mean = z.mean(0, keepdim=True)
        cov = torch.cov(z.T, correction=0).reshape(d, d)
        return GaussianMixture(torch.ones(1, dtype=torch.float64), mean,
                               _cholesky(cov, ridge).unsqueeze(0))
    generator = torch.Generator().manual_seed(seed)
    means = _kmeans_pp(z, components, generator)
    # start: hard assignment to the nearest centre, each component's weight and covariance
    nearest = torch.cdist(z, means).argmin(1)
    resp = torch.nn.functional.one_hot(nearest, components).double()
    mixture = _m_step(z, resp, ridge)
    previous = -math.inf
    for _ in range(iterations):
        log_probs = _component_log_probs(z, mixture)
        total = torch.logsumexp(log_probs, dim=1)
        mean_ll = float(total.mean())
        resp = torch.exp(log_probs - total.unsqueeze(1))
        mixture = _m_step(z, resp, ridge)
        if abs(mean_ll - previous) < tol * max(abs(mean_ll), 1.0):
            break
        previous = mean_ll
    return mixture


def _kmeans_pp(z: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    centres = [z[torch.randint(len(z), (1,), generator=generator)].squeeze(0)]
    closest = ((z - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        index = torch.multinomial(closest / closest.sum(), 1, generator=generator)
        centres.append(z[index].squeeze(0))
        closest = torch.minimum(closest, ((z - centres[-1]) ** 2).sum(1))
    return torch.stack(centres)


def _m_step(z: torch.Tensor, resp: torch.Tensor, ridge: float) -> GaussianMixture:
    counts = resp.sum(0) + 1e-10
    means = (resp.T @ z) / counts.unsqueeze(1)
    trils = []
    for k in range(resp.shape[1]):
        diff = z - means[k]
        cov = (resp[:, k].unsqueeze(1) * diff).T @ diff / counts[k]
        trils.append(_cholesky(cov, ridge))
    return GaussianMixture(counts / counts.sum(), means, torch.stack(trils))


# -- files ------------------------------------------------------------------------------------
def model_digest(directory: str | Path) -> str:
    """SHA-256 of a checkpoint folder's model.safetensors: what a prior is bound to."""
    digest = hashlib.sha256()
    with open(Path(directory) / "model.safetensors", "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_prior(directory: str | Path, mixture: GaussianMixture, info: dict[str, Any]) -> Path:
    """Write prior.safetensors + prior.json into a checkpoint folder (each written under a
    temporary name, then renamed); returns the path of prior.json."""
    from safetensors.torch import save_file

    directory = Path(directory)
    if not os.access(directory, os.W_OK):
        raise CheckpointError(f"cannot write the prior into {directory} (not writable); "
                              f"export the model to a folder of your own first "
                              f"(seqvae export MODEL FOLDER) or fit it with save=False")
    meta = {"format": PRIOR_FORMAT, "format_version": PRIOR_VERSION,
            "model_sha256": model_digest(directory), "kind": "gaussian_mixture",
            "components": mixture.components, "latent_dim": mixture.dim, **info}
    tensors_tmp = directory / f".{PRIOR_TENSORS}.tmp"
    json_tmp = directory / f".{PRIOR_JSON}.tmp"
    save_file({k: v.contiguous() for k, v in mixture.tensors().items()}, str(tensors_tmp))
    json_tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    os.replace(tensors_tmp, directory / PRIOR_TENSORS)
    os.replace(json_tmp, directory / PRIOR_JSON)
    return directory / PRIOR_JSON


def has_prior(directory: str | Path | None) -> bool:
    """Whether a checkpoint folder holds an aggregate prior (not checking it)."""
    return directory is not None and (Path(directory) / PRIOR_JSON).is_file()


def load_prior(directory: str | Path, latent_dim: int) -> tuple[GaussianMixture, dict[str, Any]]:
    """The aggregate prior stored in a checkpoint folder and its prior.json, checked against
    the folder's model.safetensors; raises CheckpointError naming the file and the fix."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    refit = f"refit it: seqvae fit-prior {directory} (or TrainedModel.fit_prior())"
    path = directory / PRIOR_JSON
    if not path.is_file():
        raise CheckpointError(f"{directory} has no aggregate prior ({PRIOR_JSON} is missing); "
                              f"fit one: seqvae fit-prior {directory} (or "
                              f"TrainedModel.fit_prior()), or sample with prior='standard'")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is corrupt (not valid JSON: {exc}); {refit}") from None
    if not isinstance(meta, dict) or meta.get("format") != PRIOR_FORMAT:
        raise CheckpointError(f"{path} is not a seqvae prior (no \"format\": "
                              f"\"{PRIOR_FORMAT}\"); {refit}")
    if meta.get("format_version", 0) > PRIOR_VERSION:
        raise CheckpointError(f"{path} was written by a newer seqvae; upgrade seqvae to read it")
    if meta.get("model_sha256") != model_digest(directory):
        raise CheckpointError(f"{path} was fitted on other weights than {directory}/"
                              f"model.safetensors (its SHA-256 differs), so its codes would "
                              f"mean nothing to this model; {refit}")
    try:
        tensors = load_file(str(directory / PRIOR_TENSORS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{directory / PRIOR_TENSORS} is missing, corrupt or not a "
                              f"safetensors file ({exc}); {refit}") from None
    mixture = GaussianMixture.from_tensors(tensors, str(directory / PRIOR_TENSORS))
    if mixture.dim != latent_dim:
        raise CheckpointError(f"{directory / PRIOR_TENSORS} is over {mixture.dim} dimensions but "
                              f"the model's latent space has {latent_dim}; {refit}")
    return mixture, meta
