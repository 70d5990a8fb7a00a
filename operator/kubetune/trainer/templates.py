"""Rendering examples into training text, with the character spans that carry the loss.

Instruction rows go through ``spec.dataset.promptTemplate`` (default: a short Alpaca-style
template); chat rows through the tokenizer's chat template (a built-in one when the tokenizer
has none), rendered turn by turn so that exactly the assistant turns are marked trainable;
completion rows are prompt + completion; text rows are trainable throughout. With
``trainOnInputs`` every character is trainable. Also gives the prompt and reference used to
score generations. Needs a tokenizer only for its chat template; does not tokenise.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any

from kubetune.trainer.errors import UserError
from kubetune.trainer.formats import Example, Message

DEFAULT_PROMPT = "### Instruction:\n{instruction}\n\n### Response:\n"
DEFAULT_PROMPT_WITH_INPUT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
FALLBACK_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_PLACEHOLDERS = frozenset({"instruction", "input"})

Span = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Rendered:
    """Training text of one example and what to score it against."""

    text: str
    spans: tuple[Span, ...]  # character ranges that carry the loss
    add_special_tokens: bool  # let the tokenizer add BOS (not for chat templates, which do)
    append_eos: bool  # append EOS after the text (trainable when the response is)
    prompt: str  # the text a model is given to generate the reference
    reference: str


def check_prompt_template(template: str) -> None:
    """Raise :class:`UserError` when ``template`` is not a usable format string."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise UserError(f"spec.dataset.promptTemplate is not a valid format string: {exc}") from None
    unknown = {n.split(".")[0].split("[")[0] for n in names} - _PLACEHOLDERS
    if unknown or "" in names:
        shown = ", ".join(sorted(f"{{{n}}}" for n in unknown)) or "{}"
        raise UserError(
            f"spec.dataset.promptTemplate uses {shown}; only {{instruction}} and {{input}} are "
            "available (write {{ and }} for literal braces)"
        )
    if "instruction" not in names:
        raise UserError("spec.dataset.promptTemplate must contain {instruction}")


class Renderer:
    """Renders examples of any format for one tokenizer and spec."""

    def __init__(self, tokenizer: Any, prompt_template: str | None, train_on_inputs: bool) -> None:
        if prompt_template is not None:
            check_prompt_template(prompt_template)
        self.tokenizer = tokenizer
        self.prompt_template = prompt_template
        self.train_on_inputs = train_on_inputs
        self.chat_template: str | None = getattr(tokenizer, "chat_template", None)

    def render(self, ex: Example) -> Rendered:
        if ex.format == "chat":
            return self._chat(ex)
        if ex.format == "instruction":
            prompt = self.instruction_prompt(ex)
            return self._pair(prompt, ex.output)
        if ex.format == "completion":
            return self._pair(ex.prompt, ex.completion)
        # text and classification: everything is trainable, nothing to generate
        return Rendered(ex.text, ((0, len(ex.text)),), True, True, "", "")

    def instruction_prompt(self, ex: Example) -> str:
        if self.prompt_template is not None:
            return self.prompt_template.format(instruction=ex.instruction, input=ex.input)
        template = DEFAULT_PROMPT_WITH_INPUT if ex.input.strip() else DEFAULT_PROMPT
        return template.format(instruction=ex.instruction, input=ex.input)

    def _pair(self, prompt: str, response: str) -> Rendered:
        text = prompt + response
        start = 0 if self.train_on_inputs else len(prompt)
        return Rendered(text, ((start, len(text)),), True, True, prompt, response)

    def _apply(self, messages: tuple[Message, ...], generation_prompt: bool) -> str:
        dicts = [{"role": m.role, "content": m.content} for m in messages]
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": generation_prompt}
        if self.chat_template is None:
            kwargs["chat_template"] = FALLBACK_CHAT_TEMPLATE
        out = self.tokenizer.apply_chat_template(dicts, **kwargs)
        return str(out)

    def _chat(self, ex: Example) -> Rendered:
        msgs = ex.messages
        full = self._apply(msgs, False)
        last = max(i for i, m in enumerate(msgs) if m.role == "assistant")
        prompt = self._apply(msgs[:last], True)
        if self.train_on_inputs:
            return Rendered(full, ((0, len(full)),), False, False, prompt, msgs[last].content)
        spans: list[Span] = []
        search_from = 0
        for i, m in enumerate(msgs):
            if m.role != "assistant":
                continue
            span = self._turn_span(msgs, i, full)
            if span is None:
                pos = full.find(m.content, search_from)
                if pos < 0:
                    raise UserError(
                        f"{ex.where}: the chat template does not reproduce assistant turn {i} "
                        "verbatim, so the label mask cannot be built; set spec.method.trainOnInputs: "
                        "true or fix the tokenizer's chat template"
                    )
                span = (pos, pos + len(m.content))
            spans.append(span)
            search_from = span[1]
        return Rendered(full, tuple(spans), False, False, prompt, msgs[last].content)

    def _turn_span(self, msgs: tuple[Message, ...], i: int, full: str) -> Span | None:
        """The characters of assistant turn ``i`` (content and end-of-turn marker), found by
        rendering the conversation up to the turn with and without it."""
        try:
            head = self._apply(msgs[:i], True)
            upto = self._apply(msgs[: i + 1], False)
        except Exception:  # templates may refuse partial conversations
            return None
        if not (upto.startswith(head) and full.startswith(upto)) or len(upto) <= len(head):
            return None
        return (len(head), len(upto))
