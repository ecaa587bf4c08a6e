"""Span graph: exact links (SPEC §3.3), decoders (fast == plain reference, Mirror parity), bounded decoding."""

import numpy as np
import pytest
import torch

from modeling_ldnet.span_graph import (
    LabelInfo,
    chain_links,
    decode_chains,
    interpret_chains,
    mirror_decode,
    plain_decode,
    threshold_logits,
)


def grid(links, n):
    y = np.zeros((3, n, n), dtype=bool)
    for c, i, j in links:
        y[c, i, j] = True
    return y


def test_spec_re_example_links():
    # SPEC §3.3 RE: parts [(4,),(11,12),(15,16)]
    links = chain_links(((4,), (11, 12), (15, 16)))
    assert sorted(links) == sorted(
        [(0, 4, 11), (0, 11, 12), (0, 12, 15), (0, 15, 16), (1, 4, 11), (1, 12, 15), (2, 16, 4)]
    )


def test_spec_ee_example_links_with_backward_edge():
    assert sorted(chain_links(((6,), (12,), (11,)))) == [(0, 6, 12), (0, 12, 11), (1, 6, 12), (1, 12, 11), (2, 11, 6)]
    assert sorted(chain_links(((8,), (12,), (13, 14)))) == [
        (0, 8, 12),
        (0, 12, 13),
        (0, 13, 14),
        (1, 8, 12),
        (1, 12, 13),
        (2, 14, 8),
    ]
    assert sorted(chain_links(((3,),))) == [(0, 3, 3), (1, 3, 3), (2, 3, 3)]


TAGS = {
    1: LabelInfo("lc", "cls", "pos"),
    2: LabelInfo("lm", "ent", "per"),
    3: LabelInfo("lr", "rel", "born in"),
    4: LabelInfo("lm", "event", "attack"),
    5: LabelInfo("lr", "event", "target"),
    6: LabelInfo("lm", "discontinuous_ent", "adr"),
    7: LabelInfo("lr", "hyper_rel", "award"),
    8: LabelInfo("lr", "hyper_rel", "year"),
}
TEXT = (10, 22)
SCHEMA = {"cls": ["pos"], "ent": ["per"], "rel": ["born in"], "event": {"attack": ["target"]},
          "discontinuous_ent": ["adr"], "hyper_rel": {"award": ["year"]}}

GOLD_CHAINS = {
    ((1,),),
    ((2,), (10, 11)),
    ((2,), (15,)),
    ((3,), (10, 11), (15,)),
    ((4,), (13,)),
    ((5,), (13,), (16, 17)),
    ((6,), (18,), (20, 21)),
    ((6,), (18,), (19,), (21,)),
    ((7,), (10, 11), (16, 17), (8,), (12,)),
    ((7,), (15,), (14,)),
}


def gold_grid():
    return grid({lk for ch in GOLD_CHAINS for lk in chain_links(ch)}, 24)


def test_gold_grid_decodes_exactly_fast_plain_and_mirror():
    y = gold_grid()
    fast = decode_chains(y, None, TAGS, TEXT, plain_text_mode=False)
    assert fast.chains == GOLD_CHAINS and not fast.budget_exhausted
    assert plain_decode(y, TAGS, TEXT, plain_text_mode=False) == GOLD_CHAINS
    assert GOLD_CHAINS <= mirror_decode(y)  # the reference (SPEC §5.1) also finds every gold chain


def test_interpretation_types_every_task():
    items = interpret_chains(GOLD_CHAINS, TAGS, SCHEMA, plain_text_mode=False)
    assert items == sorted(
        [
            ("cls", "pos"),
            ("ent", "per", (10, 11)),
            ("ent", "per", (15,)),
            ("rel", "born in", (10, 11), (15,)),
            ("event", "attack", (13,), (("target", (16, 17)),)),
            ("discontinuous_ent", "adr", ((18,), (20, 21))),
            ("discontinuous_ent", "adr", ((18,), (19,), (21,))),
            ("hyper_rel", "award", (10, 11), (16, 17), "year", (12,)),
            ("hyper_rel", "award", (15,), (14,), None, None),
        ],
        key=repr,
    )


def test_interpretation_drops_illegal_roles_and_untyped_events():
    chains = {((5,), (13,), (16,)), ((5,), (14,), (16,))}  # args, but only trigger 13 has a type
    chains.add(((4,), (13,)))
    schema = {"event": {"attack": []}}  # "target" not legal for attack
    assert interpret_chains(chains, TAGS, schema, False) == [("event", "attack", (13,), ())]


def test_zero_qualifier_fact_sharing_a_tail_is_a_documented_ambiguity():
    """A fact without qualifiers closes THW(tail_end -> relation); a qualified fact of the same relation and tail
    end then also closes after its tail: both decoders return the extra 3-part chain (not a decoder bug)."""
    chains = {((7,), (10, 11), (16, 17), (8,), (12,)), ((7,), (15,), (16, 17))}
    y = grid({lk for ch in chains for lk in chain_links(ch)}, 24)
    fast = decode_chains(y, None, TAGS, TEXT, plain_text_mode=False).chains
    assert fast == plain_decode(y, TAGS, TEXT, False)
    assert fast - chains == {((7,), (10, 11), (16, 17)), ((7,), (15,), (16, 17), (8,), (12,))}


def random_grid(rng, n, density):
    y = rng.random((3, n, n)) < density
    return y


@pytest.mark.parametrize("seed", range(40))
def test_fast_decoder_equals_plain_reference_on_random_grids(seed):
    rng = np.random.default_rng(seed)
    n = 12
    tags = {0: LabelInfo("lm", "ent", "a"), 1: LabelInfo("lr", "rel", "r"), 2: LabelInfo("lr", "hyper_rel", "h"),
            3: LabelInfo("lr", "hyper_rel", "q"), 4: LabelInfo("lm", "discontinuous_ent", "d"),
            5: LabelInfo("lc", "cls", "c"), 6: LabelInfo("lm", "event", "e"), 7: LabelInfo("lr", "event", "ro")}
    y = random_grid(rng, n, density=0.12 + 0.02 * (seed % 5))
    fast = decode_chains(y, rng.random((n, n)), tags, (8, n), plain_text_mode=False, max_parts=5, budget=10**7)
    assert not fast.budget_exhausted
    assert fast.chains == plain_decode(y, tags, (8, n), plain_text_mode=False, max_parts=5)


@pytest.mark.parametrize("seed", range(10))
def test_fast_decoder_equals_plain_reference_in_plain_text_mode(seed):
    rng = np.random.default_rng(100 + seed)
    y = random_grid(rng, 10, 0.3)
    fast = decode_chains(y, None, {}, (2, 9), plain_text_mode=True)
    assert fast.chains == plain_decode(y, {}, (2, 9), plain_text_mode=True)


def test_decoding_is_bounded_on_untrained_scores():
    """About half of all cells positive, L=256, 40 labels: the reference path search explodes; ours stops."""
    torch.manual_seed(0)
    length = 256
    logits = torch.randn(2, 3, length, length)
    y = threshold_logits(logits, [length, length], 0.5, max_links_per_row=16)
    assert 0.45 < y[:, 1:].mean() < 0.55  # untrained-like density on NSW/THW
    assert (y[:, 0].sum(-1) <= 16).all()  # NNW capped per row
    tags = {i: LabelInfo("lr" if i % 2 else "lm", "rel" if i % 2 else "ent", f"l{i}") for i in range(1, 41)}
    res = decode_chains(y[0], logits[0, 0].numpy(), tags, (41, length - 1), False, max_parts=8, budget=20000)
    assert res.steps <= 20000 and len(res.chains) > 0
    small = decode_chains(y[0], logits[0, 0].numpy(), tags, (41, length - 1), False, max_parts=8, budget=1000)
    assert small.budget_exhausted and small.steps == 1000 and small.cut_tags <= set(tags)
    assert {ch[0][0] for ch in small.chains} == set(tags)  # shared round robin: every label gets chains
    # the reference finds no start node in such a grid (every node has an incoming edge: SPEC §5.3), and on an
    # acyclic half-dense NNW grid it enumerates every prefix of every walk: exponential
    dag = y[0].copy()
    dag[0] = np.triu(np.random.default_rng(0).random((length, length)) < 0.5, 1)
    with pytest.raises(RuntimeError, match="path explosion"):
        mirror_decode(dag, max_paths=100000)


def _threshold_always_topk(logits, lengths, threshold, k):
    """The pre-optimisation threshold_logits: NNW top-k applied unconditionally."""
    t = float(np.log(threshold / (1.0 - threshold)))
    x = logits.float()
    pos = torch.arange(x.shape[-1])
    valid = pos[None, :] < torch.as_tensor(lengths)[:, None]
    y = (x > t) & valid[:, None, :, None] & valid[:, None, None, :]
    kth = x[:, 0].topk(k, dim=-1).values[..., -1:]
    y[:, 0] &= x[:, 0] >= kth
    return y.numpy()


@pytest.mark.parametrize("shift", [-6.0, -3.0, -1.5, 0.0])
def test_threshold_skips_topk_only_when_it_changes_nothing(shift):
    """Counting positives first must give exactly the unconditional top-k, sparse (skipped) or dense (applied)."""
    g = torch.Generator().manual_seed(int(shift * 10) + 7)
    logits = torch.randn(3, 3, 40, 40, generator=g) * 2 + shift
    logits[:, :, :, 35:] = -1e4  # padded columns, as the model masks them
    lens = [40, 35, 20]
    k = 4
    got = threshold_logits(logits, lens, 0.5, max_links_per_row=k)
    assert np.array_equal(got, _threshold_always_topk(logits, lens, 0.5, k))
    assert (got[:, 0].sum(-1) <= k).all()


def test_threshold_respects_lengths_and_threshold():
    logits = torch.tensor([[[[2.0, -2.0], [0.1, 3.0]]] * 3])
    y = threshold_logits(logits, [1], 0.5, None)
    assert y[0, :, 0, 0].all() and not y[0, :, 1, 1].any() and not y[0, :, 0, 1].any()
    y = threshold_logits(logits, [2], 0.9, None)  # logit(0.9) = 2.197
    assert y[0, 0].tolist() == [[False, False], [False, True]]
