"""FairT2I: LLM-assisted bias detection and attribute rebalancing for text-to-image generation.

Sakurai & Sato, arXiv 2502.03826 (2025; later versions: "Training-Free Bias Mitigation by
LLM-Assisted Bias Detection and Latent Variable Guidance"). Modules:

* ``report``: the validated ``BiasReport``; ``lexicon``: person words and sensitive axes;
* ``detect``: the embedded detector (lexicon + optional MiniLM), caching, stated-attribute guard;
* ``llm``: OpenAI-compatible chat-completions and local transformers backends with retries,
  JSON repair, schema validation and fallback;
* ``rebalance``: target distributions, joint sampling, bias-aware prompts, latent-variable
  guidance (``mix_noise``);
* ``bridge``: ``FairPipeline`` over diffusers pipelines (DLPack exchange), ``tiny_pipeline``;
* ``toy``: the biased toy text-to-image world and its JAX denoiser; ``evaluate``: metrics.

Heavy dependencies (torch, diffusers, transformers) load only when ``bridge``, ``text`` or the
LLM transformers backend is used.
"""

from jaxml.fairt2i.detect import CachedDetector, Detector, EmbeddedDetector, detect, enforce_stated
from jaxml.fairt2i.lexicon import DEFAULT_AXES, Axis
from jaxml.fairt2i.llm import OpenAIChatDetector, TransformersDetector
from jaxml.fairt2i.rebalance import (TargetDistribution, augment_prompt, guidance_components,
                                     mix_noise, sample_assignments)
from jaxml.fairt2i.report import BiasReport, ReportSchemaError

__all__ = [
    "Axis", "DEFAULT_AXES", "BiasReport", "ReportSchemaError", "Detector", "EmbeddedDetector",
    "CachedDetector", "detect", "enforce_stated", "OpenAIChatDetector", "TransformersDetector",
    "TargetDistribution", "augment_prompt", "guidance_components", "mix_noise",
    "sample_assignments",
]
