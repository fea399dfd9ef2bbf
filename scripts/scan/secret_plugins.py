"""detect-secrets plugins for the provider credentials this gateway handles (scripts/scan/secrets.py).

detect-secrets ships detectors for AWS, GitHub, Slack, Stripe and private keys, but none for the
LLM providers whose keys pass through the gateway, which are the secrets most likely to leak here.
"""
import re

from detect_secrets.plugins.base import RegexBasedDetector


class LlmProviderKeyDetector(RegexBasedDetector):
    """OpenAI, Anthropic, Google AI and Hugging Face API keys, by their published prefixes."""

    secret_type = "LLM provider API key"  # noqa: S105  # the finding's label, not a key

    denylist = [
        # OpenAI: legacy sk-...T3BlbkFJ... and project/service keys (sk-proj-, sk-svcacct-, sk-admin-).
        re.compile(r"\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b"),
        re.compile(r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}"),
        # Anthropic: sk-ant-api03-... and admin keys.
        re.compile(r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,}"),
        # Google AI Studio / Gemini and other Google API keys.
        re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
        # Hugging Face user access tokens.
        re.compile(r"\bhf_[A-Za-z0-9]{34,}\b"),
    ]
