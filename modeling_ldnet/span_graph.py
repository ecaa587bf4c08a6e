"""The span graph (SPEC §3, §5): tuples <-> chains of token nodes <-> links in 3 channels, and the decoder.

A *part* is ``(i,)`` or ``(i, j)`` (boundary tokens of a span, or a schema tag), a *chain* a tuple of parts.
Channels (SPEC §3.2): 0 NNW/AS (consecutive nodes), 1 NSW/A2A (last node of a part -> first node of the next),
2 THW/TA (last node -> first node). A chain of one node ``i`` sets ``(c, i, i)`` in every channel.

Decoding (SPEC §5.4, our version): instead of enumerating every walk of the NNW graph (exponential, §5.3), we
search from each schema tag only the chain shapes its task can be typed as (entity = 2 parts, relation = 3,
hyper-relation = 3 or 5, ...), with parts of one or two *text* nodes (``i < j``), within-part edges NNW without
NSW, cross-part edges NNW with NSW (a part may start on the token where the previous one ended: a self-loop),
closed by THW. Chains are *simple* (:func:`is_simple_chain`): no span twice (but a one-token head == tail).
Row-wise top-k on NNW and a budget of search steps per record, shared round-robin by
the schema tags (no label starves), bound the work on any score grid; a cut search is reported, never silent.
``plain_decode`` is the unbounded brute-force definition the fast one is tested against (docs/decoding.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

Part = tuple[int, ...]
Chain = tuple[Part, ...]
Link = tuple[int, int, int]

NNW, NSW, THW = 0, 1, 2


@dataclass(frozen=True)
class LabelInfo:
    """A schema label as placed in the sequence: tag namespace (``lc``/``lm``/``lr``), the task of its first
    insertion (SPEC §2 dedup), and the label string."""

    ns: str
    task: str
    string: str


def chain_nodes(chain: Chain) -> list[int]:
    return [i for part in chain for i in part]


def is_simple_chain(chain: Chain) -> bool:
    """A chain is *simple* when no part (span) comes twice, except that a one-token part may be taken twice in a row
    (head == tail of one token: the token is linked to itself, NNW + NSW). A tuple never names the same span twice
    otherwise; without this rule a cycle of the graph is walked again and again (fragments ``[A, B]`` and
    ``[B, A]`` used to give ``A B A B ...``). Tokens may repeat across different parts: nested or overlapping spans
    (``(3, 5), (3, 7)``) and parts sharing a boundary token (``(3, 5), (5, 7)``) are simple."""
    for k, part in enumerate(chain):
        if part in chain[:k] and not (len(part) == 1 and chain[k - 1] == part and part not in chain[: k - 1]):
            return False
    return True


def chain_links(chain: Chain) -> list[Link]:
    """Links of one chain (SPEC §3.2)."""
    nodes = chain_nodes(chain)
    if len(nodes) == 1:
        i = nodes[0]
        return [(NNW, i, i), (NSW, i, i), (THW, i, i)]
    links = [(NNW, a, b) for a, b in zip(nodes, nodes[1:])]
    links += [(NSW, p[-1], q[0]) for p, q in zip(chain, chain[1:])]
    links.append((THW, nodes[-1], nodes[0]))
    return links


def allowed_part_counts(info: LabelInfo, max_parts: int) -> tuple[int, ...]:
    """Chain lengths (in parts) that interpretation (SPEC §5.2) accepts for a chain starting at this tag."""
    if info.task == "cls":
        return (1,)
    if info.task == "ent":
        return (2,)
    if info.task == "rel":
        return (3,)
    if info.task == "event":
        return (2,) if info.ns == "lm" else (3,)
    if info.task == "discontinuous_ent":
        return tuple(range(2, max(2, max_parts) + 1))
    if info.task == "hyper_rel":
        return (3, 5) if max_parts >= 5 else (3,)
    raise ValueError(f"unknown label task {info.task!r}")


# ------------------------------------------------------------------------------------------------------------
# thresholding (vectorised, batched)


def threshold_logits(
    logits: torch.Tensor,
    lengths: Sequence[int],
    threshold: float | Sequence[float] = 0.5,
    max_links_per_row: int | None = 16,
) -> np.ndarray:
    """``[B, 3, L, L]`` decision logits -> boolean ``[B, 3, L, L]`` numpy links.

    ``sigmoid(x) > t  <=>  x > logit(t)``; ``threshold`` is one value or one per channel (calibrated thresholds,
    ``LDNetConfig.decode_channel_thresholds``). Cells beyond each record's length are cleared, and NNW keeps at most
    ``max_links_per_row`` highest-scoring positives per row (bounds the decoder on dense, untrained grids).
    """
    x = logits.detach().float()
    if isinstance(threshold, (int, float)):
        t: float | torch.Tensor = float(np.log(threshold / (1.0 - threshold)))
    else:
        tc = torch.as_tensor([float(v) for v in threshold], dtype=torch.float32, device=x.device)
        if tc.numel() != x.shape[1]:
            raise ValueError(f"threshold: {tc.numel()} per-channel values for {x.shape[1]} channels")
        t = torch.log(tc / (1.0 - tc))[None, :, None, None]
    b, _, length, _ = x.shape
    lens = torch.as_tensor(list(lengths), device=x.device)
    pos = torch.arange(length, device=x.device)
    valid = pos[None, :] < lens[:, None]
    y = (x > t) & valid[:, None, :, None] & valid[:, None, None, :]
    # the top-k only changes rows with more than k positives (then every positive outside the top k goes); trained
    # models' grids have none, so count first and skip the B x L x L topk (bench/RESULTS.md §5)
    if (max_links_per_row is not None and max_links_per_row < length and y.numel()
            and int(y[:, NNW].sum(-1).max()) > max_links_per_row):
        kth = x[:, NNW].topk(max_links_per_row, dim=-1).values[..., -1:]  # [B, L, 1]
        y[:, NNW] &= x[:, NNW] >= kth
    return y.cpu().numpy()


# ------------------------------------------------------------------------------------------------------------
# decoding one record


@dataclass
class DecodeResult:
    """Chains found in one record (one window). ``budget_exhausted``: the step budget ran out before every tag's
    search finished, so ``chains`` is a subset; ``cut_tags``: the tags whose search was cut; ``steps``: steps spent."""

    chains: set[Chain] = field(default_factory=set)
    budget_exhausted: bool = False
    steps: int = 0
    cut_tags: set[int] = field(default_factory=set)


def decode_chains(
    y: np.ndarray,
    scores: np.ndarray | None,
    tags: dict[int, LabelInfo],
    text_range: tuple[int, int],
    plain_text_mode: bool,
    max_parts: int = 8,
    budget: int = 20000,
) -> DecodeResult:
    """Fast bounded decoder for one record: every simple typeable chain, unless the step budget runs out.

    Each schema tag has its own depth-first search (children best NNW score first); the searches take one step in
    turn (round robin), so with ``T`` tags still searching each gets an equal share of what is left of the budget
    and a label late in the schema never starves. When the budget is spent the result is flagged
    ``budget_exhausted`` and the unfinished tags are listed in ``cut_tags``; below the budget the result is exactly
    :func:`plain_decode`'s.

    Args:
        y: boolean ``[3, n, n]`` links (already thresholded / top-k'd; ``n`` = record length).
        scores: ``[n, n]`` NNW scores used to order the search (best first), or None.
        tags: absolute tag index -> :class:`LabelInfo`.
        text_range: ``[lo, hi)`` absolute indices of the text tokens.
        plain_text_mode: ``[TP]`` records (no schema): chains of one text part are MRC spans.
        max_parts: longest chain searched (discontinuous entities).
        budget: maximum search steps (one step = one partial chain expanded), shared by all tags.
    """
    nnw, nsw, thw = y[NNW], y[NSW], y[THW]
    lo, hi = text_range
    res = DecodeResult()
    succ_cache: dict[int, list[int]] = {}

    def succ(x: int) -> list[int]:
        if x not in succ_cache:
            nxt = np.flatnonzero(nnw[x])
            nxt = nxt[nxt != x]
            if scores is not None and len(nxt) > 1:
                nxt = nxt[np.argsort(-scores[x, nxt], kind="stable")]
            succ_cache[x] = nxt.tolist()
        return succ_cache[x]

    def is_text(i: int) -> bool:
        return lo <= i < hi

    def expand(s: int, counts: tuple[int, ...], hyper: bool, stack: list[Chain]) -> None:
        """One search step of tag ``s``: pop a partial chain, keep it if THW closes it, push its extensions."""
        parts = stack.pop()
        n, last = len(parts), parts[-1][-1]
        if n in counts and thw[last, s]:
            res.chains.add(parts)
        if n >= counts[-1]:
            return
        children: list[Chain] = []
        nexts = succ(last)
        if nnw[last, last] and is_text(last):  # the next part may start on this part's last token (self-loop)
            nexts = [last] + nexts
        for y1 in nexts:
            if not nsw[last, y1]:
                continue
            if hyper and n == 3:
                q = tags.get(y1)
                if q is not None and q.ns == "lr" and (y1,) not in parts:
                    children.append(parts + ((y1,),))
                continue
            if not is_text(y1):
                continue
            # simple chains: a new part is no earlier part, but a one-token part may come twice in a row
            if (y1,) not in parts or (parts[-1] == (y1,) and (y1,) not in parts[:-1]):
                children.append(parts + ((y1,),))
            for z in succ(y1):
                if z > y1 and is_text(z) and not nsw[y1, z] and (y1, z) not in parts:
                    children.append(parts + ((y1, z),))
        stack.extend(reversed(children))  # best-scoring first

    queue: deque[tuple[int, tuple[int, ...], bool, list[Chain]]] = deque()
    for s, info in tags.items():
        counts = allowed_part_counts(info, max_parts)
        if counts == (1,):
            if nnw[s, s] and thw[s, s]:
                res.chains.add(((s,),))
            continue
        queue.append((s, tuple(sorted(counts)), info.task == "hyper_rel", [((s,),)]))
    while queue:  # round robin, one step each: every tag still searching gets the same share
        s, counts, hyper, stack = queue.popleft()
        if res.steps >= budget:
            res.budget_exhausted = True
            res.cut_tags = {s} | {t for t, *_ in queue}
            break
        res.steps += 1
        expand(s, counts, hyper, stack)
        if stack:
            queue.append((s, counts, hyper, stack))
    if plain_text_mode and not res.budget_exhausted:  # no tags: O(n * top-k) span checks, always bounded
        for s in range(lo, hi):
            if nnw[s, s] and thw[s, s]:
                res.chains.add(((s,),))
            for e in succ(s):
                res.steps += 1
                if e > s and is_text(e) and not nsw[s, e] and thw[e, s]:
                    res.chains.add(((s, e),))
    return res


def _typed_chain_ok(
    chain: Chain, tags: dict[int, LabelInfo], text_range: tuple[int, int], plain_text_mode: bool, max_parts: int
) -> bool:
    """The shape filter shared by both decoders (what interpretation can type)."""
    lo, hi = text_range
    first = chain[0]
    if len(first) == 1 and first[0] in tags:
        info = tags[first[0]]
        if len(chain) not in allowed_part_counts(info, max_parts):
            return False
        for k, part in enumerate(chain[1:], start=1):
            if info.task == "hyper_rel" and k == 3:
                if len(part) != 1 or part[0] not in tags or tags[part[0]].ns != "lr":
                    return False
                continue
            if not all(lo <= i < hi for i in part) or (len(part) == 2 and part[0] >= part[1]):
                return False
        return True
    if not plain_text_mode or len(chain) != 1:
        return False
    part = chain[0]
    return all(lo <= i < hi for i in part) and (len(part) == 1 or part[0] < part[1])


def plain_decode(
    y: np.ndarray, tags: dict[int, LabelInfo], text_range: tuple[int, int], plain_text_mode: bool, max_parts: int = 8
) -> set[Chain]:
    """Unbounded reference: every NNW walk (nodes may repeat) from a possible chain start s (a schema tag, or a text
    token in ``[TP]`` mode) closed by THW(e, s), split at NSW edges, kept when every part has at most 2 nodes, the
    shape is typeable and the chain is simple (:func:`is_simple_chain`: no span twice). Exponential in the walk
    length; tests only."""
    nnw, nsw, thw = y[NNW], y[NSW], y[THW]
    n = nnw.shape[0]
    out: set[Chain] = set()
    max_parts_any = max(max_parts, 5)
    max_nodes = 2 * max_parts_any
    for s in range(n):
        if nnw[s, s] and thw[s, s]:
            chain = ((s,),)
            if _typed_chain_ok(chain, tags, text_range, plain_text_mode, max_parts):
                out.add(chain)

    def walk(path: list[int], parts: Chain, limit: int) -> None:
        last = path[-1]
        if len(path) >= 2 and thw[last, path[0]]:
            if _typed_chain_ok(parts, tags, text_range, plain_text_mode, max_parts) and is_simple_chain(parts):
                out.add(parts)
        if len(path) >= max_nodes:
            return
        for nxt in np.flatnonzero(nnw[last]).tolist():
            # prune walks that can never be typed: parts only grow (<= 2 nodes each), and so does their count; and
            # walks that are not simple (a part, once final, repeats an earlier one)
            if nsw[last, nxt]:  # the current part is final
                if len(parts) < limit and is_simple_chain(parts):
                    walk(path + [nxt], parts + ((nxt,),), limit)
            elif len(parts[-1]) < 2:
                grown = parts[:-1] + (parts[-1] + (nxt,),)  # a 2-node part is final
                if is_simple_chain(grown):
                    walk(path + [nxt], grown, limit)

    starts = sorted(tags) + (list(range(*text_range)) if plain_text_mode else [])
    for s in starts:  # a text start (MRC) is one part; a tag's chain has at most its task's part count
        walk([s], ((s,),), max(allowed_part_counts(tags[s], max_parts)) if s in tags else 1)
    return out


def mirror_decode(y: np.ndarray, max_paths: int = 200000) -> set[Chain]:
    """SPEC §5.1 reference algorithm (Mirror/LDNet ``decode_nnw_nsw_thw_mat``), for parity tests on gold grids.

    Start nodes = nodes with an outgoing and no incoming NNW edge; every prefix of every edge-simple walk is a
    path; THW (e, s) cuts paths; NSW splits parts. ``max_paths`` guards against its exponential blow-up. Like the
    other decoders it keeps simple chains only (:func:`is_simple_chain`): §5.1 walks may revisit nodes.
    """
    nnw, nsw, thw = y[NNW], y[NSW], y[THW]
    n = nnw.shape[0]
    paths: list[tuple[int, ...]] = [(i,) for i in range(n) if nnw[i, i]]
    edges = {(int(a), int(b)) for a, b in zip(*np.nonzero(nnw)) if a != b}
    out_deg = {a for a, _ in edges}
    in_deg = {b for _, b in edges}
    starts = sorted(out_deg - in_deg)
    adj: dict[int, list[int]] = {}
    for a, b in sorted(edges):
        adj.setdefault(a, []).append(b)
    for s in starts:
        stack: list[tuple[tuple[int, ...], frozenset[tuple[int, int]]]] = [((s,), frozenset())]
        while stack:
            path, used = stack.pop()
            for nxt in adj.get(path[-1], []):
                if (path[-1], nxt) in used:
                    continue
                new = path + (nxt,)
                paths.append(new)
                if len(paths) > max_paths:
                    raise RuntimeError("mirror_decode: path explosion (the reference decoder's known failure)")
                stack.append((new, used | {(path[-1], nxt)}))
    nsw_set = {(int(a), int(b)) for a, b in zip(*np.nonzero(nsw))}
    out: set[Chain] = set()
    for e, s in zip(*np.nonzero(thw)):
        e, s = int(e), int(s)
        for path in paths:
            if s not in path:
                continue
            sub = path[path.index(s):]
            if e not in sub:
                continue
            chain_n = sub[: sub.index(e) + 1]
            parts: list[list[int]] = [[chain_n[0]]]
            for a, b in zip(chain_n, chain_n[1:]):
                if (a, b) in nsw_set:
                    parts.append([b])
                else:
                    parts[-1].append(b)
            chain = tuple(tuple(p) for p in parts)
            if is_simple_chain(chain):
                out.add(chain)
    return out


# ------------------------------------------------------------------------------------------------------------
# interpretation (SPEC §5.2): chains -> typed token-level items


def type_chains(
    chains: Iterable[Chain], tags: dict[int, LabelInfo], schema: dict, plain_text_mode: bool
) -> dict[tuple, tuple[Chain, ...]]:
    """Typed token-level items, each with the chains it was read from (its score is theirs: SPEC §5.2):

    ``("cls", label)``, ``("ent", type, part)``, ``("discontinuous_ent", type, parts)``,
    ``("rel", relation, head, tail)``, ``("hyper_rel", relation, head, tail, q_label | None, q_part | None)``,
    ``("event", type, trigger, ((role, arg_part), ...))``, ``("span", part)``.

    Every item but an event comes from one chain. Events: one per (trigger part, event type), from its trigger
    chain plus one chain ``[role, trigger, arg]`` per argument; an argument joins every event of that trigger whose
    type allows the role (SPEC §5.2 keeps the last type only; we keep all, deterministically).
    """
    items: dict[tuple, tuple[Chain, ...]] = {}
    triggers: dict[Part, dict[str, Chain]] = {}
    args: dict[Part, dict[tuple[str, Part], Chain]] = {}
    event_schema = schema.get("event", {})
    hyper_schema = schema.get("hyper_rel", {})
    for chain in chains:
        first = chain[0]
        info = tags.get(first[0]) if len(first) == 1 else None
        if info is None:
            if plain_text_mode and len(chain) == 1:
                items[("span", chain[0])] = (chain,)
            continue
        k = len(chain)
        item: tuple | None = None
        if info.task == "cls" and k == 1:
            item = ("cls", info.string)
        elif info.task == "ent" and k == 2:
            item = ("ent", info.string, chain[1])
        elif info.task == "discontinuous_ent" and k >= 2:
            item = ("discontinuous_ent", info.string, tuple(chain[1:]))
        elif info.task == "rel" and k == 3:
            item = ("rel", info.string, chain[1], chain[2])
        elif info.task == "hyper_rel" and k == 3:
            item = ("hyper_rel", info.string, chain[1], chain[2], None, None)
        elif info.task == "hyper_rel" and k == 5:
            q = tags.get(chain[3][0])
            if q is not None and q.string in hyper_schema.get(info.string, ()):
                item = ("hyper_rel", info.string, chain[1], chain[2], q.string, chain[4])
        elif info.task == "event" and info.ns == "lm" and k == 2:
            triggers.setdefault(chain[1], {})[info.string] = chain
        elif info.task == "event" and info.ns == "lr" and k == 3:
            args.setdefault(chain[1], {})[(info.string, chain[2])] = chain
        if item is not None:
            items[item] = (chain,)
    for trig, types in triggers.items():
        for etype, trig_chain in types.items():
            if etype not in event_schema:
                continue
            legal = set(event_schema[etype])
            event_args = sorted(a for a in args.get(trig, {}) if a[0] in legal)
            items[("event", etype, trig, tuple(event_args))] = (trig_chain, *(args[trig][a] for a in event_args))
    return items


def interpret_chains(
    chains: Iterable[Chain], tags: dict[int, LabelInfo], schema: dict, plain_text_mode: bool
) -> list[tuple]:
    """The typed items of :func:`type_chains`, sorted (deterministic)."""
    return sorted(type_chains(chains, tags, schema, plain_text_mode), key=repr)


#: public name of the typed-chain check (the decoder benchmark filters reference chains with it)
typed_chain_ok = _typed_chain_ok
