"""LLM priors: scoring backends, model files, versioned prompt templates and the replica pool.

`LlamaCppBackend` lives in `priorcache.platform.llm.llama_cpp_backend` and is imported from
there, so importing this package does not load llama.cpp's shared library; likewise
`VllmBackend` in `priorcache.platform.llm.vllm_backend`, which imports vLLM only when built.
"""

from priorcache.platform.llm.backend import ModelFileError, ScoringBackend
from priorcache.platform.llm.model_files import cache_dir_from_env, default_model_path, resolve_model_path
from priorcache.platform.llm.prompts import PromptTemplate, available_prompts, load_prompt

__all__ = [
    "ModelFileError",
    "PromptTemplate",
    "ScoringBackend",
    "available_prompts",
    "cache_dir_from_env",
    "default_model_path",
    "load_prompt",
    "resolve_model_path",
]
