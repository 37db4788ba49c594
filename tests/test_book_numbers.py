"""Every number in the book's prose comes from a run: glued (myst-nb ``{glue:text}``) or on a commented allow-list.

The test reads each page's Markdown *prose*: it drops the jupytext header, code cells (with their metadata),
``literalinclude`` and other non-prose directives, display and inline math, roles (``{cite}``, ``{glue:text}``,
``{numref}``, ...), inline code, link targets, labels and comments. What is left is what a reader reads as text,
and every number in it (digits, with a decimal point, thousands commas, ``%`` or a ``k``/``M`` suffix) must be

* produced by a glue role (those are removed before the search, so they never count), or
* matched by one of the ``GLOBAL_ALLOWED`` patterns (section, chapter and equation numbers, list enumerators,
  citations' years, identifiers such as GPT-2), or
* matched by an entry of ``PAGE_ALLOWED`` for its page: a phrase with the number in context and the reason it is
  not a measurement (a hyperparameter the page sets, a constant of the task, an exact or hand-computed value).

A number typed by hand from a run fails the test with its page, line and context. Numbers that are not
measurements but that a reader might take for one belong in math (``$\\alpha = 1$``) or on the allow-list.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Directives whose body is prose a reader reads (their option lines are dropped); every other fenced block is code.
PROSE_DIRECTIVES = {
    "admonition",
    "note",
    "tip",
    "warning",
    "important",
    "hint",
    "seealso",
    "caution",
    "dropdown",
    "margin",
    "sidebar",
    "epigraph",
    "attention",
    "topic",
    "figure",
}

_FENCE = re.compile(r"^(\s*)(`{3,}|:{3,})\s*(?:\{([\w:-]+)\})?(.*)$")
NUMBER = re.compile(r"(?<![\w.,])[-−+]?\d+(?:[.,]\d+)*(?:k|M|B)?%?(?![\w])")

# Patterns that are never measurements, for every page. Each match is blanked before the search for numbers.
GLOBAL_ALLOWED: list[tuple[str, str]] = [
    # cross-references: "section 2.1", "chapters 3 and 4", "eq. 4", "takeaway 5", "assignment 07", "exercise 2"
    (
        r"(?i)\b(?:sections?|chapters?|eqs?\.|equations?|takeaways?|assignments?|exercises?|parts?|figures?|"
        r"tables?|appendix|theorems?|lemmas?|propositions?|algorithm|lines?|stages?|steps?|actions?|word|position|"
        r"pieces?|state)\s+\d+(?:\.\d+)*"
        r"(?:(?:\s*,\s*|\s*,?\s+(?:and|or|to)\s+|\s*[–-]\s*)\d+(?:\.\d+)*)*",
        "a cross-reference",
    ),
    (r"(?m)^\s*\d+[.)]\s", "a list enumerator"),
    (r"(?m)^#+\s+\d+(?:\.\d+)*\s", "a numbered heading"),
    (r"\*\*\d+\. ", "a bold enumerator opening a paragraph"),
    (r"(?m)^\|\s*\*{0,2}\d+(?:\.\d+)*\.?(?=\s)", "a table row headed by its chapter or section number"),
    (r"under 1\.5 GB|≤ 1\.5 GB|three minutes on two cores", "the book's budget per chapter (DESIGN.md)"),
    (
        r"\bet al\.,? \(?(?:19|20)\d\d[a-z]?\)?|\((?:19|20)\d\d[a-z]?\)|\b(?:in|from|since) (?:19|20)\d\d\b",
        "a year of publication",
    ),
    (r"arXiv:\s*\d+\.\d+", "an arXiv identifier"),
    (r"\b[A-Za-z]+[-_]\d+(?:\.\d+)?\b", "an identifier such as GPT-2, CartPole-v1, top-1"),
    (r"\b50,257\b", "GPT-2's vocabulary size"),
    (r"\b0-1 (?:loss|cost)\b", "the name of a loss"),
]

# Per page: (phrase, why it is not a measurement). The phrase is a regex matched against the page's prose; it
# should name the number in its context so that the same digits elsewhere on the page still count.
PAGE_ALLOWED: dict[str, list[tuple[str, str]]] = {
    "01-rl/5-why-ppo": [
        (
            r"32-word slice|to 12 words|same 30,000 environment steps|with 4 epochs of 4 minibatches per batch of 512"
            r"|\(8 environments|entropy bonus \(?0\.03|20 epochs per batch instead of 4|buffer of 20,000 transitions, one"
            r" update of 64 every 4 steps, target network copied every 250|from 1 to 0\.05|Every 2,048 steps",
            "the why-ppo settings the page runs",
        ),
        (r"with 16 gradient steps per batch", "4 epochs x 4 minibatches, the token-MDP settings (stale-rollouts)"),
        (r"towards 1, with|about 0 after normalisation", "limits in an exercise's argument"),
        (r"for 32 actions|gives 2\.6 and\s+4\.7", "an exercise's setting and the analytic sqrt(2 ln V)"),
        (
            r"for 20 epochs|\(20,000 transitions, 64 sampled every 4 steps\)|draws 16 transitions|\(64 every 4 steps\)"
            r"|for 20,000 steps|up to 20,000 steps",
            "exercise 4: the DQN settings and its hand computation",
        ),
    ],
    "01-rl/6-action-space": [
        (
            r"from 4 to hundreds|from 4 to 256 tokens|up to 1,024 tokens|at 1,024 tokens",
            "the vocabulary sizes the action-space experiment sweeps",
        ),
        (
            r"sequence of 8 tokens|at least 6 of the 8 tokens|And 8 tokens|target is 6 of 8 tokens",
            "the task's horizon and target (action-space config)",
        ),
        (r"not 196", "the tiny GPT-2's vocabulary size"),
        (r"puts 90% of its probability on 8 plausible|about 9 episodes", "exercise 3: its numbers and answer"),
        (
            r"steps at 8 tokens and|\b16, with seeds on both sides of 1\b|The ratio at 4 tokens|past 32 tokens",
            "the horizons the sparse-reward experiment sweeps (its config), and the ratio 1 of no cost",
        ),
    ],
    "04-irl/2-adversarial-irl": [
        (r"\b25(?= (?:demonstrated|pairs))", "demonstrated pairs: one 500-step episode, every 20th pair (config)"),
        (
            r"for 40,000 steps|for 60,000 environment steps|needed 60,000 environment|\(1,000 full-batch",
            "the adversarial-irl experiment's config",
        ),
        (r"1 on the expert's pairs and 0 on", "the discriminator's labels"),
    ],
    "02-offline-rl/4-why-rlhf-is-online": [
        (r"collect 10 more episodes|with 10% random actions|visited in 50 episodes", "the page's settings"),
    ],
    "03-imitation/1-behaviour-cloning": [
        (
            r"cost of a step is 1 when|mistake costs 1\.|and 1 at a step off it|\b1 per step, the most|climbs towards 1",
            "the tightrope's 0-1 cost and its maximum",
        ),
        (r"from 50 such episodes|\n?20,000 simulated episodes", "the page's settings"),
        (r"feature is 0 in every|initial value, 0\.", "an exercise's reasoning about initial weights"),
    ],
    "03-imitation/2-dagger": [
        (
            r"from 2 to 512 steps|runs from 0\.04 to 10\)|on 4,000 fresh|on 2,000 episodes",
            "the compounding-error experiment's config",
        ),
        (
            r"exactly 2 only|\"1 per step\"|climbs to 1 around|to 1 on the line",
            "the quadratic exponent and the ceiling of 1 per step",
        ),
    ],
    "04-irl/1-maxent-irl": [
        (
            r"is a 6 × 6 map|with probability 0\.1 a uniformly|200 gradient steps|over the 36 cells",
            "the gridworld and the maxent-irl experiment's config",
        ),
        (r"which sums to 2\.|sum to 1 in every cell", "exercises 1 and 2: hand-computed sums"),
    ],
    "05-rlhf/2-ppo": [
        (r"samples 64 responses|ratio is exactly 1 at|one of 196 tokens", "PPO's settings and the vocabulary size"),
        (r"seeds 0, 1 and 2", "the seeds of the runs quoted"),
    ],
    "05-rlhf/1-sft-and-reward-model": [
        (r"\(1\) fine-tune|\(2\) let|\(3\) optimise", "the three steps of RLHF, enumerated"),
        (r"SFT policy at 0\*\*: \"\+1\" means|score mean 0 and standard deviation 1", "the reward unit's definition"),
        (
            r"differ by one step, 0\.25|differ by 0\.5\?|caps agreement at 95%",
            "exercise 1: the gold step and 1 - noise",
        ),
    ],
    "05-rlhf/3-kl-and-clipping": [
        (
            r"3 nats \(and a horizon of 200 samples, so that it acts within 40|\((?:20|40) iterations\)|over the 196 tokens|"
            r"on 512 samples",
            "the page's settings (adaptive controller, panel, vocabulary, samples)",
        ),
        (
            r"target 3 nats and horizon 200, and sees batches of 64|horizon of 10,000|\b11 iterations;|from 0\.3 to",
            "exercise 2: its settings and the hand computation",
        ),
        (r"docks 0\.25 for the repeat and 1 for", "constants of the gold reward"),
        (r"seeds? [0-2](?:(?:,\s+|\s+and\s+)[0-2])*|after 10 iterations", "the seeds' names, the clip sweep's setting"),
    ],
    "05-rlhf/index": [
        (r"SFT policy at 0,", "the normalisation's definition"),
        (r"\| (?:\d(?:, \d)*(?: and \d)?): ", "the survey's takeaway numbers in the table"),
    ],
    "05-rlhf/4-overoptimization": [
        (
            r"first 1,000 of the 2,500 training pairs|for 50 iterations|2,048 SFT samples|up to 1,024\.|with 1,000 pairs",
            "the overoptimization experiment's config",
        ),
        (r"docks 0\.25 for each", "a constant of the gold reward"),
    ],
    "05-rlhf/5-dpo": [
        (r"same 2,500 training pairs|for 300 steps of 32 pairs", "the dpo experiment's config"),
        (r"log-ratios are 0|minimised \(at 0\)", "an exercise's exact values"),
        (
            r"same 300 steps of 32 pairs|samples 500 fresh pairs|takes 60 steps|round 1's|seeds? [0-2](?:(?:,\s+|\s+and\s+)[0-2])*",
            "the online dpo control's config (online_rounds = 5) and the seeds' names",
        ),
    ],
    "appendix-scaling": [
        (r"117k-parameter", "the shipped tiny GPT-2's size (its configuration, not a measurement)"),
        (r"124M", "the name of GPT-2's smallest configuration"),
        (r"ZeRO-2/3|/3\b", "the names of DeepSpeed's sharding stages"),
        (
            r"is 64 rollouts per iteration|\(64 rollouts, minibatches of 32, 2 epochs, 28 new tokens\)",
            "chapter 5's PPO settings (rlhf experiment defaults)",
        ),
        (
            r"\(PPO: 64 rollouts, minibatches of 32, 2 epochs, 28 new tokens; GRPO: 8 groups of 8, two minibatches, 32",
            "chapters 5 and 7's PPO and GRPO settings (rlhf and grpo experiment defaults)",
        ),
        (r"every reward is 0|configuration for 1 process", "a random model's exact reward, a process count"),
        (
            r"about 5 GB of float32",
            "a hand computation: four 124M-parameter models' weights, gradients and Adam states",
        ),
        (
            r"for 1 and N processes|book's 2-core build|operation 2 above",
            "a process count, the build machine, a cross-reference",
        ),
    ],
    "teachers": [
        (r"\b0[1-7]\b", "assignment numbers"),
        (
            r"score 100% and the untouched copies 0 points|100% and the untouched copies at 0",
            "what the grader's own check requires (tools/check_assignments.py)",
        ),
        (r"\(30 s, 300 s for", "the grader's timeouts (rl4llm.assignments.grading)"),
        (r"Python 3\)", "a language version"),
    ],
    "04-irl/3-rlhf-as-online-irl": [
        (
            r"\b500(?= (?:of its texts|texts|demonstrations))|\(30\n?|\(label [01]\)|from 1,000 tex|samples 64 texts|"
            r"tokens, 150 times|is 150 noisy|every 10 iterations",
            "the token-irl experiment's config",
        ),
        (r"\(seed 0, recorded", "the seed of the recorded run"),
    ],
    "06-prompting/2-offline-reward-model": [
        (r"are 64-dimensional|all 64 dimensions|In 64 dimensions", "the arithmetic LM's hidden size"),
        (
            r"The 800 logged|on the 400 training|\(3,200 outcomes\)|\n?400 queries, and the four|with all 400",
            "the logs' size and split (config)",
        ),
        (r"Chance is 0\.5|ranking is 1\.", "the AUC's range"),
        (r"one split, seed 0", "the split's seed"),
        (
            r"score 0\.9 and 0\.6, the negatives 0\.8 and 0\.3|\(0\.9, 0\.8\), \(0\.9, 0\.3\) and \(0\.6, 0\.3\)|"
            r"\(0\.6, 0\.8\)|returns 0\.75",
            "exercise 1: its scores and hand-computed AUC",
        ),
    ],
    "06-prompting/1-prompting-as-rl": [
        (r"with horizon 1,|horizon is 1,|from 0 to 99", "the task's definition"),
        (r"64-dimensional embeddings|vocabulary of 38|on 12,000 solved", "the arithmetic LM's size and training data"),
        (r"-7B-Chat|TigerBot-13B-Chat", "model names in the paper (LLaMA-2-7B-Chat, ...)"),
        (r"answers 800 fresh queries \(200 of each type\)|That is 9,600 calls", "the logs' config: 800 x 12 calls"),
        (
            r"benchmarks 12 prompts on 400|next 400 user|Answering 400 user|takes 400 calls|batch of 400",
            "exercise 2: its numbers and hand count",
        ),
    ],
    "06-prompting/3-query-dependent-prompting": [
        (
            r"on the 400 training|to the 400 held-out|the 400 training queries times 8 prompts, 3,200 calls",
            "the split (config) and its count of calls",
        ),
        (r"\(0/1\)|prompt 0 \(", "an outcome's values and a prompt's index"),
    ],
    "04-irl/index": [
        (r"\*\*4\.[123] ", "section numbers in bold list items"),
        (r"From 25 demonstrated|learned from 500\s+demonstrations", "the sections' configs (pairs, demonstrations)"),
    ],
    "01-rl/1-agent-environment": [
        (r"after 500 steps|truncates episodes at 500 steps", "CartPole-v1's time limit"),
        (r"runs it on 50 random 10-armed", "the bandit experiment's config"),
        (r"about 100 steps for|episode of 100 steps", "1/(1 - 0.99), the figure's episode length"),
        (
            r"nothing after it: about 1|response of 20 tokens|For a 20-token|so 50 steps for|and 1,000 for|close to 1",
            "exercises 3 and 4: their settings and hand-computed answers",
        ),
    ],
    "01-rl/3-ppo": [
        (
            r"pushing a ratio to 100|the ratio is 1, both|stays near 0\.5 throughout|over 12 tokens gives advantages of"
            r" order 0\.01",
            "illustrative values in the text and the exercises",
        ),
        (r"Gymnasium 1\.x", "a library version"),
        (r"with reward 0\.|fresh prefix \(3 is", "what the printed two-token episode shows (reset reward, pad id)"),
        (
            r"8 environments of 32 steps per batch, 20 epochs|annealed to 0|for 100,000 steps|for 20 epochs per batch",
            "the ppo-cartpole settings the page runs",
        ),
        (r"for about 22 steps", "a random policy's mean CartPole-v1 episode length, a known property of the task"),
    ],
    "01-rl/4-lm-as-agent": [
        (r"over 193 words|vocabulary of 196 tokens \(the 193|\b196 actions", "the grammar's and tokenizer's sizes"),
        (r"scaled by 1\.5 after|but the last earns 0", "constants of the gold reward and of the MDP"),
        (r"two layers, 64-dimensional|real 124-million-parameter|on 20,000", "model and pretraining config"),
        (r"has 10 words", "exercise 1's hand count"),
    ],
    "01-rl/index": [(r"Assignments 01 \(|and 02 \(", "assignment numbers")],
    "01-rl/2-policy-gradients": [
        (r"draws 100 batches of 4 episodes|mean of all 300", "the variance experiment's settings (100 x 4, 3 ways)"),
        (r"writes 16 tokens from a vocabulary of 4", "the GAE experiment's token MDP"),
        (r"below 1\b", "the range of the discount"),
    ],
    "02-offline-rl/1-logged-data": [
        (
            r"\(Example 6\.6\)|On a 4 × 7 grid|have value 0\.|its value is 0 \|",
            "the task's definition (Sutton & Barto)",
        ),
        (r"logs 50 episodes of at most 50 steps|stopped after 8,192|probability 0\.1\.", "the logging config"),
        (r"minibatches of 256 logged pairs", "behaviour cloning's batch size (config)"),
        (r"takes 12 moves \(3 up, 6 right, 3 down\)", "the safe route, counted on the grid"),
        (r"It is about 0\.4 in the five cells|below 0\.15 everywhere", "exercise 2's hand computation"),
        (r"reaching 500 steps|a reward of 1 and nothing after", "CartPole-v1's time limit and reward"),
    ],
    "02-offline-rl/2-extrapolation-error": [
        (r"seeds 0, 1 and 2", "the page's seeds"),
        (r"\"stop\" pays 0 in both|\(4 > 0\)|Over-estimation 7\.|have earned 5:", "exercise 1: its numbers"),
        (
            r"initialised at 0|Starting from 0|over-estimated at 0|an unseen 0|close to 0, far|near 100%",
            "exercise 2 and 3: initial values and limits",
        ),
    ],
    "02-offline-rl/3-conservative-q-learning": [
        (r"a gap of 3 makes|a gap of 0\.3", "illustrative gaps between two Q-values"),
        (r"50 episodes each|20 iterations of 50 steps", "the offline-rl experiment's config"),
        (r"after 8,192 steps|10% random actions, 30 episodes", "the offline-cartpole experiment's config"),
        (r"[Aa]dd(?:ing)? 5 to both|by 100 feels a push of at most 1", "numbers an exercise poses"),
        (r"route of 1[02] moves", "lengths of the cliff walk's routes, counted on its grid"),
    ],
    "03-imitation/3-exposure-bias": [
        (
            r"for 40 words|10,240 labelled prefixes\*\* \(256 texts of 40 words\) and the same 900|"
            r"256 expert demonstrations|same 256 demonstrations|192 demonstrations, then 2 rounds of 32|"
            r"generates 400 streams|and 64 rollouts",
            "the exposure-bias experiment's config (budget, length)",
        ),
        (r"the 0-1 cost|one mistake: 1 for a writer|the 1 of the ideal", "the cost's definition: exact values"),
        (r"review of 6 words: 1 everywhere for intact and inside, 0 cost", "an exercise's hand-computed answer"),
        (
            r"on 256 demonstrations of 63 words|writes 400 streams of 63 words|words in 63\.|"
            r"words 33 to 63 against|over the first 8 \(|its cost at 63 words|spent on 64 rollouts",
            "the token-horizon experiment's config (budget, length, the horizons the rates are read over)",
        ),
        (r"samples are seed 0;|seeds 0, 1 and 2", "seed numbers (which runs a claim rests on)"),
    ],
    "05-rlhf/6-helpful-harmless": [
        (
            r"\(30 iterations each|on 256 fresh samples|In 30 iterations with|optimum in 30 iterations",
            "the helpful-harmless experiment's config (PPO iterations, evaluation samples)",
        ),
    ],
    # chapter 7: "pass@k" at a set k is the name of a metric, not a measurement
    "07-rlvr/index": [
        (r"pass@\d+", "the name of the metric pass@k at a set k"),
        (r"Since 2024", "a year"),
    ],
    "07-rlvr/1-task-and-verifier": [
        (r"pass@\d+", "the name of the metric pass@k at a set k"),
        (r"numbers below 100", "the task's definition (chapter 6's queries)"),
        (r"two layers, 64 dimensions", "the checkpoint's configuration"),
        (r"exact: 1 when the number|answer, 0 otherwise, and 0 when", "the verifier's definition"),
        (r"at temperature 1,", "the sampling temperature (setting)"),
    ],
    "07-rlvr/2-group-baseline": [
        (r"pass@\d+", "the name of the metric pass@k at a set k"),
        (r"runs seed 0; seeds 1 and 2", "the seeds of the page's run and of the quoted runs"),
        (r"rewards of 0 and 1", "the verifier's two values"),
        (
            r"15 iterations of 64 completions each\s+\(from 32 prompts × 2 to 2 prompts × 32\), evaluated on 200"
            r"|groups of 32,|that divides 64\.",
            "the reduced sweep's settings (REDUCED and the swept group sizes)",
        ),
        (r"Add 1 to every reward \(a correct answer pays 2, a wrong one 1\)", "exercise 3's setting"),
    ],
    "07-rlvr/3-normalisations": [
        (r"pass@\d+", "the name of the metric pass@k at a set k"),
        (
            r"15 iterations of\s+64 completions, evaluated on 200|on 64 fresh completions|from 64 completions|"
            r"at 0\.2, but|at 0\.5 and",
            "the reduced sweeps' settings (REDUCED, kl_to_reference's n, a swept clip range)",
        ),
        (r"In seed 0,|seeds \(seeds 1 and\s+2 recorded", "the seeds of the page's run and of the quoted runs"),
        (r"at most 1 in", "the bound of an advantage without division (rewards in [0, 1])"),
        (r"every ratio is 1,", "an exact value: the ratio at the start of an update"),
    ],
    "07-rlvr/4-pass-at-k": [
        (r"pass@\d+", "the name of the metric pass@k at a set k"),
        (r"\(seed 0\)", "the seed of the GRPO run"),
        (
            r"probability 0\.9 per sample and the other half with probability 0 per|with probability 0\.45\.",
            "exercise 2's setting",
        ),
    ],
    "07-rlvr/5-verifier-hacking": [
        (r"pass@\d+", "the name of the metric pass@k at a set k"),
        (r"\(seed 0, like|\(seeds 1 and 2 recorded", "the seeds of the page's run and of the quoted runs"),
    ],
}


def _strip_header(text: str) -> tuple[str, int]:
    """Drop the jupytext header; return the body and the number of lines dropped."""
    if text.startswith("---\n"):
        end = text.index("\n---", 4)
        end = text.index("\n", end + 1) + 1
        return text[end:], text[:end].count("\n")
    return text, 0


def _blank(match: re.Match) -> str:
    """Replace a match by spaces, keeping its newlines (so line numbers survive)."""
    return re.sub(r"[^\n]", " ", match.group(0))


def prose(text: str) -> str:
    """The page's prose with everything else blanked out (same number of lines as the page)."""
    body, offset = _strip_header(text)
    out = [""] * offset
    stack: list[tuple[str, bool]] = []  # open fences: (fence, is_prose)
    for line in body.split("\n"):
        m = _FENCE.match(line)
        in_code = any(not is_prose for _, is_prose in stack)
        if m:
            fence, name, rest = m.group(2), m.group(3), m.group(4)
            if (
                stack
                and fence[0] == stack[-1][0][0]
                and len(fence) >= len(stack[-1][0])
                and not name
                and not rest.strip()
            ):
                stack.pop()
                out.append("")
                continue
            if not in_code and (name is not None or fence[0] == "`"):
                is_prose = name is not None and name.split(":")[0] in PROSE_DIRECTIVES
                stack.append((fence, is_prose))
                out.append(rest if is_prose and name != "figure" else "")  # an admonition's title is prose
                continue
        if in_code or re.match(r"^\s*:[\w-]+:", line) and stack:
            out.append("")
        else:
            out.append(line)
    text = "\n".join(out)
    text = re.sub(r"\$\$.*?\$\$", _blank, text, flags=re.S)  # display math
    text = re.sub(r"(?<!\\)\$(?:[^$\n]|\n(?!\s*\n))+?(?<!\\)\$", _blank, text)  # inline math, may wrap
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", _blank, text)  # roles: cite, glue, numref, ref, doc, eq, math
    text = re.sub(r"`+[^`\n]*`+", _blank, text)  # inline code
    text = re.sub(r"\]\([^)\s]*\)", _blank, text)  # link targets
    text = re.sub(r"<https?://[^>]*>|https?://\S+", _blank, text)
    text = re.sub(r"<!--.*?-->", _blank, text, flags=re.S)
    text = re.sub(r"(?m)^\([\w-]+\)=\s*$|^%.*$", _blank, text)  # labels, MyST comments
    return text


def unexplained_numbers(page: Path) -> list[str]:
    """Numbers in the page's prose that are neither glued nor allowed, as 'line N: number in context'."""
    text = prose(page.read_text())
    rel = page.relative_to(ROOT / "book").with_suffix("").as_posix()
    patterns = GLOBAL_ALLOWED + PAGE_ALLOWED.get(rel, [])
    for pattern, _why in patterns:
        text = re.sub(pattern, _blank, text)
    found = []
    for i, line in enumerate(text.split("\n"), start=1):
        for m in NUMBER.finditer(line):
            context = line[max(0, m.start() - 40) : m.end() + 40].strip()
            found.append(f"line {i}: {m.group(0)!r} in '{context}'")
    return found


# Pages whose prose still types measured numbers by hand (issue 15 is converting them page by page). Each is an
# expected failure, strict: the test errors as soon as a page is clean, so that it leaves this list.
PENDING: set[str] = set()


def _pages() -> list:
    pages = []
    for page in sorted(ROOT.glob("book/**/*.md")):
        rel = page.relative_to(ROOT / "book").with_suffix("").as_posix()
        marks = [pytest.mark.xfail(strict=True, reason="numbers still typed by hand")] if rel in PENDING else []
        pages.append(pytest.param(page, id=rel, marks=marks))
    return pages


def test_pending_pages_exist():
    for rel in PENDING:
        assert (ROOT / "book" / f"{rel}.md").exists(), f"PENDING names {rel}, which is not a page"


def test_prose_drops_code_math_roles_and_header():
    page = "\n".join(
        [
            "---",
            "jupytext:",
            "  format_version: 0.13",
            "---",
            "# Title",
            "",
            "```{code-cell} ipython3",
            "---",
            "mystnb:",
            "  figure:",
            "    caption: returns 0.82",
            "---",
            "x = 41",
            "```",
            "Inline $\\alpha = 7$ and {cite}`key2023` and `f(5)` and {glue:text}`ch-x:.2f` and [link](page-9.md).",
            "$$",
            "y = 12",
            "$$",
            ":::{admonition} Solution",
            ":class: dropdown",
            "It earns 3.5.",
            ":::",
            "A measured 0.37 here, in section 2.1 and chapter 5, with GPT-2.",
        ]
    )
    kept = prose(page)
    assert kept.count("\n") == page.count("\n")  # line numbers survive
    numbers = [m.group(0) for m in NUMBER.finditer(kept)]
    assert "0.82" not in numbers and "41" not in numbers and "7" not in numbers and "12" not in numbers
    assert "3.5" in numbers and "0.37" in numbers  # an admonition's body and plain prose are read


def test_unexplained_numbers_reports_typed_numbers(tmp_path, monkeypatch):
    book = tmp_path / "book"
    book.mkdir()
    page = book / "x.md"
    page.write_text("# X\n\nThe learner earns 0.82, see section 1.5 and {glue:text}`ch-x:.2f`.\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = unexplained_numbers(page)
    assert len(found) == 1 and "'0.82'" in found[0] and found[0].startswith("line 3:")


@pytest.mark.parametrize("page", _pages())
def test_every_number_in_the_prose_comes_from_a_run(page):
    found = unexplained_numbers(page)
    assert not found, (
        f"{page.relative_to(ROOT)}: numbers typed by hand (glue them with myst_nb.glue and "
        "{glue:text}, or add a commented PAGE_ALLOWED entry if they are not measurements):\n" + "\n".join(found)
    )


def _glue_patterns(text: str) -> list[re.Pattern]:
    """The names a page's code cells glue, as regexes (an f-string's ``{...}`` fields match any text)."""
    patterns = []
    for prefix, name in re.findall(r"\bglue\(\s*(f?)\"([^\"]+)\"", text):
        parts = re.split(r"\{[^}]*\}", name) if prefix else [name]
        patterns.append(re.compile(".+?".join(re.escape(p) for p in parts) + "$"))
    return patterns


@pytest.mark.parametrize(
    "page",
    [p for p in sorted(ROOT.glob("book/**/*.md")) if "{glue" in p.read_text()],
    ids=lambda p: p.relative_to(ROOT / "book").as_posix(),
)
def test_every_glued_name_is_glued_on_its_page(page):
    # A name that no cell glues is a Sphinx warning, and -W fails the book build only after every page has run.
    text = page.read_text()
    patterns = _glue_patterns(text)
    for role in re.findall(r"\{glue(?::\w+)?\}`([^`]+)`", text):
        # a trailing Python format spec (``:.2f``, ``:,``, ``:+.1%``) is not part of the name
        name = role.rsplit(":", 1)[0] if re.search(r":[<>=^]?[+\- ]?#?0?\d*[,_]?(\.\d+)?[a-zA-Z%]?$", role) else role
        assert "::" not in name, f"{page}: {name} pastes from another page; glue it on this one"
        assert any(p.match(name) for p in patterns), f"{page}: {{glue:text}} uses {name!r}, which no cell glues"


def test_glued_names_are_unique_across_the_book():
    # myst-nb keeps one namespace per page, but a name reused on two pages is easy to paste from the wrong one.
    seen: dict[str, Path] = {}
    for page in sorted(ROOT.glob("book/**/*.md")):
        for name in set(re.findall(r"\bglue\(\s*f?\"([^\"{]+)", page.read_text())):
            prefix = name.split("-")[0] + "-" + name.split("-")[1] if name.count("-") >= 1 else name
            assert seen.get(prefix, page) == page, f"glue prefix {prefix!r} is used by {seen[prefix]} and {page}"
            seen[prefix] = page


def test_glue_patterns_expand_f_strings():
    patterns = _glue_patterns('glue(f"ch3-3-{key}-{stat}{suffix}", x, display=False)\nglue("ch1-4-n", 3)')
    assert any(p.match("ch3-3-sft-falls_no_slip") for p in patterns)
    assert any(p.match("ch1-4-n") for p in patterns)
    assert not any(p.match("ch3-4-sft-falls") for p in patterns) and not any(p.match("ch1-4-nn") for p in patterns)
