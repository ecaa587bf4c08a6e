"""The span graph (SPEC §3, §5): tuples <-> chains of token nodes <-> links in 3 channels, and the decoder.

A *part* is ``(i,)`` or ``(i, j)`` (boundary tokens of a span, or a schema tag), a *chain* a tuple of parts.
Channels (SPEC §3.2): 0 NNW/AS (consecutive nodes), 1 NSW/A2A (last node of a part -> first node of the next),
2 THW/TA (last node -> first node). A chain of one node ``i`` sets ``(c, i, i)`` in every channel.

Decoding (SPEC §5.4, our version): instead of enumerating every walk of the NNW graph (exponential, §5.3), we
search from each schema tag only the chain shapes its task can be typed as (entity = 2 parts, relation = 3,
hyper-relation = 3 or 5, ...), with parts of one or two *text* nodes (``i < j``), within-part edges NNW without
NSW, cross-part edges NNW with NSW (a part may start on the token where the previous one ended: a self-loop),
closed by THW. Row-wise top-k on NNW and a budget of search
steps per record bound the work on any score grid; ``plain_decode`` is the unbounded brute-force definition the
fast one is tested against.
"""

from __future__ import annotations

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
    logits: torch.Tensor, lengths: Sequence[int], threshold: float = 0.5, max_links_per_row: int | None = 16
) -> np.ndarray:
    """``[B, 3, L, L]`` decision logits -> boolean ``[B, 3, L, L]`` numpy links.

    ``sigmoid(x) > t  <=>  x > logit(t)``. Cells beyond each record's length are cleared, and NNW keeps at most
    ``max_links_per_row`` highest-scoring positives per row (bounds the decoder on dense, untrained grids).
    """
    t = float(np.log(threshold / (1.0 - threshold)))
    x = logits.detach().float()
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
    chains: set[Chain] = field(default_factory=set)
    budget_exhausted: bool = False
    steps: int = 0


def decode_chains(
    y: np.ndarray,
    scores: np.ndarray | None,
    tags: dict[int, LabelInfo],
    text_range: tuple[int, int],
    plain_text_mode: bool,
    max_parts: int = 8,
    budget: int = 20000,
) -> DecodeResult:
    """Fast bounded decoder for one record.

    Args:
        y: boolean ``[3, n, n]`` links (already thresholded / top-k'd; ``n`` = record length).
        scores: ``[n, n]`` NNW scores used to order the search (best first), or None.
        tags: absolute tag index -> :class:`LabelInfo`.
        text_range: ``[lo, hi)`` absolute indices of the text tokens.
        plain_text_mode: ``[TP]`` records (no schema): chains of one text part are MRC spans.
        max_parts: longest chain searched (discontinuous entities).
        budget: maximum search steps; when spent the result is flagged ``budget_exhausted``.
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

    for s, info in tags.items():
        if res.budget_exhausted:
            break
        counts = allowed_part_counts(info, max_parts)
        if counts == (1,):
            if nnw[s, s] and thw[s, s]:
                res.chains.add(((s,),))
            continue
        hyper = info.task == "hyper_rel"
        lo_c, hi_c = min(counts), max(counts)
        # iterative DFS over part sequences, bounded by the part count (nodes may repeat: two parts can share a
        # boundary token, e.g. an aspect and its opinion; the shared token is linked to itself NNW+NSW)
        stack: list[tuple[Part, ...]] = [((s,),)]
        while stack:
            res.steps += 1
            if res.steps > budget:
                res.budget_exhausted = True
                break
            parts = stack.pop()
            n, last = len(parts), parts[-1][-1]
            if n >= lo_c and n in counts and thw[last, s]:
                res.chains.add(parts)
            if n >= hi_c:
                continue
            children: list[tuple[Part, ...]] = []
            nexts = succ(last)
            if nnw[last, last] and is_text(last):
                nexts = [last] + nexts
            for y1 in nexts:
                if not nsw[last, y1]:
                    continue
                if hyper and n == 3:
                    q = tags.get(y1)
                    if q is not None and q.ns == "lr":
                        children.append(parts + ((y1,),))
                    continue
                if not is_text(y1):
                    continue
                children.append(parts + ((y1,),))
                for z in succ(y1):
                    if z > y1 and is_text(z) and not nsw[y1, z]:
                        children.append(parts + ((y1, z),))
            stack.extend(reversed(children))  # best-scoring first
    if plain_text_mode and not res.budget_exhausted:
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
    token in ``[TP]`` mode) closed by THW(e, s), split at NSW edges, kept when every part has at most 2 nodes and the
    shape is typeable. Exponential in the walk length; tests only."""
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

    def walk(path: list[int], n_parts: int, part_len: int) -> None:
        last = path[-1]
        if len(path) >= 2 and thw[last, path[0]]:
            parts: list[list[int]] = [[path[0]]]
            for a, b in zip(path, path[1:]):
                if nsw[a, b]:
                    parts.append([b])
                else:
                    parts[-1].append(b)
            chain = tuple(tuple(p) for p in parts)
            if _typed_chain_ok(chain, tags, text_range, plain_text_mode, max_parts):
                out.add(chain)
        if len(path) >= max_nodes:
            return
        for nxt in np.flatnonzero(nnw[last]).tolist():
            # prune walks that can never be typed: parts only grow (<= 2 nodes each), and so does their count
            if nsw[last, nxt]:
                if n_parts < max_parts_any:
                    walk(path + [nxt], n_parts + 1, 1)
            elif part_len < 2:
                walk(path + [nxt], n_parts, part_len + 1)

    starts = sorted(tags) + (list(range(*text_range)) if plain_text_mode else [])
    for s in starts:
        walk([s], 1, 1)
    return out


def mirror_decode(y: np.ndarray, max_paths: int = 200000) -> set[Chain]:
    """SPEC §5.1 reference algorithm (Mirror/LDNet ``decode_nnw_nsw_thw_mat``), for parity tests on gold grids.

    Start nodes = nodes with an outgoing and no incoming NNW edge; every prefix of every edge-simple walk is a
    path; THW (e, s) cuts paths; NSW splits parts. ``max_paths`` guards against its exponential blow-up.
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
            out.add(tuple(tuple(p) for p in parts))
    return out


# ------------------------------------------------------------------------------------------------------------
# interpretation (SPEC §5.2): chains -> typed token-level items


def interpret_chains(
    chains: Iterable[Chain], tags: dict[int, LabelInfo], schema: dict, plain_text_mode: bool
) -> list[tuple]:
    """Typed token-level items (sorted, deterministic):

    ``("cls", label)``, ``("ent", type, part)``, ``("discontinuous_ent", type, parts)``,
    ``("rel", relation, head, tail)``, ``("hyper_rel", relation, head, tail, q_label | None, q_part | None)``,
    ``("event", type, trigger, ((role, arg_part), ...))``, ``("span", part)``.

    Events: one per (trigger part, event type); an argument chain ``[role, trigger, arg]`` joins every event of
    that trigger whose type allows the role (SPEC §5.2 keeps the last type only; we keep all, deterministically).
    """
    items: set[tuple] = set()
    triggers: dict[Part, set[str]] = {}
    args: dict[Part, set[tuple[str, Part]]] = {}
    event_schema = schema.get("event", {})
    hyper_schema = schema.get("hyper_rel", {})
    for chain in chains:
        first = chain[0]
        info = tags.get(first[0]) if len(first) == 1 else None
        if info is None:
            if plain_text_mode and len(chain) == 1:
                items.add(("span", chain[0]))
            continue
        k = len(chain)
        if info.task == "cls" and k == 1:
            items.add(("cls", info.string))
        elif info.task == "ent" and k == 2:
            items.add(("ent", info.string, chain[1]))
        elif info.task == "discontinuous_ent" and k >= 2:
            items.add(("discontinuous_ent", info.string, tuple(chain[1:])))
        elif info.task == "rel" and k == 3:
            items.add(("rel", info.string, chain[1], chain[2]))
        elif info.task == "hyper_rel" and k == 3:
            items.add(("hyper_rel", info.string, chain[1], chain[2], None, None))
        elif info.task == "hyper_rel" and k == 5:
            q = tags.get(chain[3][0])
            if q is not None and q.string in hyper_schema.get(info.string, ()):
                items.add(("hyper_rel", info.string, chain[1], chain[2], q.string, chain[4]))
        elif info.task == "event" and info.ns == "lm" and k == 2:
            triggers.setdefault(chain[1], set()).add(info.string)
        elif info.task == "event" and info.ns == "lr" and k == 3:
            args.setdefault(chain[1], set()).add((info.string, chain[2]))
    for trig, types in triggers.items():
        for etype in types:
            if etype not in event_schema:
                continue
            legal = set(event_schema[etype])
            event_args = tuple(sorted(a for a in args.get(trig, ()) if a[0] in legal))
            items.add(("event", etype, trig, event_args))
    return sorted(items, key=repr)

