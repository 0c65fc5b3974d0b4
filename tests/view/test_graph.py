"""The DAG picture (jobauto/view/graph.py): layout() on hand-built campaigns (collapsing, edges,
escaping), DOT and mermaid with hostile names. The `jobauto graph` command: cli/test_graph.py."""

from __future__ import annotations

import random
import re

import pytest
from helpers import svg_texts

from jobauto.core.errors import ConfigError
from jobauto.view.campaign import Campaign, JobView
from jobauto.view.collapse import Picture, layout
from jobauto.view.graph import BORDER, printable, to_dot, to_image, to_mermaid


# -- hand-built campaigns --------------------------------------------------------------------
def job(name: str, state: str = "done", deps: list[str] | None = None, derived: str = "",
        kind: str = "run") -> JobView:
    group, _, step = name.rpartition("/") if kind == "run" else ("", "", "")
    return JobView(name, state, derived=derived, deps=list(deps or []), group=group, step=step)


def campaign(jobs: list[JobView], kind: str = "run") -> Campaign:
    return Campaign(kind, "/nowhere", 0.0, jobs, {})


def chain_jobs(d: str, n: int, states: list[tuple[str, str]] | None = None) -> list[JobView]:
    states = states or [("done", "")] * n
    return [job(f"{d}/qsub.{i}", states[i][0], [f"{d}/qsub.{i - 1}"] if i else [], states[i][1])
            for i in range(n)]


def check(p: Picture, c: Campaign) -> dict[str, str]:
    """The invariants of every picture: each job in exactly one node, the node edges exactly the
    member edges (union, no self-loops, no duplicates), and no cycle. Returns job -> node id."""
    where: dict[str, str] = {}
    for n in p.nodes:
        for name in n.jobs:
            assert name not in where, f"{name} in two nodes"
            where[name] = n.id
        assert sum(n.counts.values()) == len(n.jobs)
    assert set(where) == {j.name for j in c.jobs}
    expected = {(where[d], where[j.name]) for j in c.jobs for d in j.deps if where[d] != where[j.name]}
    assert len(p.edges) == len(set(p.edges))
    assert set(p.edges) == expected
    succ: dict[str, list[str]] = {n.id: [] for n in p.nodes}
    indeg = {n.id: 0 for n in p.nodes}
    for a, b in p.edges:
        succ[a].append(b)
        indeg[b] += 1
    todo = [n for n, d in indeg.items() if d == 0]
    seen = 0
    while todo:
        n = todo.pop()
        seen += 1
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                todo.append(m)
    assert seen == len(p.nodes), "the picture has a cycle"
    return where


def test_chain_of_five_collapses_to_one_node() -> None:
    c = campaign(chain_jobs("Si", 5))
    p = layout(c, collapse="chains")
    check(p, c)
    assert len(p.nodes) == 1
    n = p.nodes[0]
    assert n.title == "Si/qsub.0 … qsub.4 (5 jobs)"
    assert n.counts == {"done": 5} and n.state == "done" and n.cluster == "Si"
    assert p.clusters == {"Si": [n.id]}
    assert "chains" in p.caption and "5 jobs shown as 1 node" in p.caption
    # auto leaves 5 jobs alone under the default --max-nodes, and merges them under a small one
    assert len(layout(c).nodes) == 5
    assert len(layout(c, max_nodes=2).nodes) == 1


def two_hundred_chains() -> Campaign:
    """200 chains of 5 (one directory each) feeding summary/qsub.0, in every state."""
    jobs: list[JobView] = []
    for k in range(200):
        if k < 100:
            states = [("done", "")] * 5
        elif k < 150:
            states = [("done", ""), ("running", "")] + [("pending", "waiting")] * 3
        elif k < 199:
            states = [("pending", "ready")] + [("pending", "waiting")] * 4
        else:
            states = [("done", ""), ("error", "")] + [("pending", "blocked")] * 3
        jobs += chain_jobs(f"m{k}", 5, states)
    jobs.append(job("summary/qsub.0", "pending", [f"m{k}/qsub.4" for k in range(200)], "blocked"))
    return campaign(jobs)


def test_two_hundred_chains_feeding_one_job_collapse_with_counts_and_state_mix() -> None:
    c = two_hundred_chains()
    p = layout(c)
    where = check(p, c)
    assert len(p.nodes) == 2
    group = next(n for n in p.nodes if len(n.jobs) == 1000)
    final = next(n for n in p.nodes if n.jobs == ["summary/qsub.0"])
    assert group.title == "200 × qsub.0…qsub.4 (1,000 jobs)"
    assert group.counts == {"done": 551, "running": 50, "ready": 49, "waiting": 346,
                            "blocked": 3, "error": 1}
    assert group.state == "error"   # the worst state present
    assert "551 done, 50 running, 49 ready, 346 waiting, 3 blocked, 1 error" in group.lines
    assert "m0, m1, m2, m3, … (200 in all)" in group.lines
    assert "error: m199/qsub.1" in group.lines
    assert group.cluster == ""      # spans directories: outside the clusters
    assert final.state == "blocked" and final.cluster == "summary"
    assert p.edges == [(where["m0/qsub.0"], where["summary/qsub.0"])]
    assert p.caption.startswith("1,001 jobs shown as 2 nodes: chains of single-dependency jobs "
                                "and groups of identical chains merged")
    assert not p.too_many
    # DOT: a striped node, proportional but every state visible, the worst colour as its border
    dot = to_dot(p)
    line = next(ln for ln in dot.splitlines() if "200 × qsub.0" in ln)
    assert 'style="striped"' in line and f'color="{BORDER["error"]}"' in line
    weights = [float(w) for w in re.findall(r";([0-9.]+)", line.split("fillcolor=")[1].split('"')[1])]
    assert len(weights) == 6 and sum(weights) <= 1.0 and min(weights) >= 0.05
    to_image(dot, "svg")


def test_collapse_none_and_chains_keep_what_they_promise() -> None:
    c = two_hundred_chains()
    every = layout(c, collapse="none")
    check(every, c)
    assert len(every.nodes) == 1001 and len(every.edges) == 1000
    assert all(len(n.jobs) == 1 and n.title == n.jobs[0] for n in every.nodes)
    assert "every job drawn" in every.caption
    chains = layout(c, collapse="chains")
    check(chains, c)
    assert len(chains.nodes) == 201 and chains.too_many
    assert "more than --max-nodes 150, drawn anyway" in chains.caption
    assert sum(n.title.endswith("(5 jobs)") for n in chains.nodes) == 200
    # a chain never crosses directories in a run
    assert all(len({name.split("/")[0] for name in n.jobs}) == 1 for n in chains.nodes)


def test_diamond_is_not_merged_into_a_chain() -> None:
    # a -> b, a -> c, b -> d, c -> d: no node has a single link, so no chain forms
    jobs = [job("x/qsub.0"), job("x/qsub.1", deps=["x/qsub.0"]), job("x/qsub.2", deps=["x/qsub.0"]),
            job("x/qsub.3", "pending", ["x/qsub.1", "x/qsub.2"], "ready")]
    c = campaign(jobs)
    p = layout(c, collapse="chains")
    check(p, c)
    assert len(p.nodes) == 4 and len(p.edges) == 4
    # groups merges only the two parallel jobs; the ends stay single and the edges stay
    g = layout(c, collapse="groups")
    where = check(g, c)
    assert len(g.nodes) == 3
    assert where["x/qsub.1"] == where["x/qsub.2"]
    assert len({where["x/qsub.0"], where["x/qsub.1"], where["x/qsub.3"]}) == 3
    assert g.edges == [(where["x/qsub.0"], where["x/qsub.1"]), (where["x/qsub.1"], where["x/qsub.3"])]


def test_run_chains_stay_inside_a_directory() -> None:
    # Si/prep.0 -> calc/Si/qsub.0 is a single link, but between two directories
    jobs = [job("Si/qsub.prep"), job("calc/Si/qsub.0", deps=["Si/qsub.prep"]),
            job("calc/Si/qsub.1", deps=["calc/Si/qsub.0"])]
    c = campaign(jobs)
    p = layout(c, collapse="chains")
    check(p, c)
    assert [n.title for n in p.nodes] == ["Si/qsub.prep", "calc/Si/qsub.0 … qsub.1 (2 jobs)"]
    assert p.clusters == {"Si": ["n0"], "calc/Si": ["n1"]}
    # a table has no directories: the same links make one chain
    t = campaign([job(j.name, deps=j.deps, kind="table") for j in jobs], "table")
    assert [n.title for n in layout(t, collapse="chains").nodes] == [
        "Si/qsub.prep … calc/Si/qsub.1 (3 jobs)"]


def test_groups_merge_only_exact_twins_when_that_is_enough() -> None:
    # six chains feed summary; a seventh chain of the same steps feeds nothing
    jobs = [j for d in ("Si", "GaAs", "NiO", "Cu", "MgO", "ZnO", "extra") for j in chain_jobs(d, 5)]
    jobs.append(job("summary/qsub.0", deps=[f"{d}/qsub.4" for d in ("Si", "GaAs", "NiO", "Cu",
                                                                     "MgO", "ZnO")]))
    c = campaign(jobs)
    p = layout(c, max_nodes=5)
    check(p, c)
    assert sorted(n.title for n in p.nodes) == ["6 × qsub.0…qsub.4 (30 jobs)",
                                                "extra/qsub.0 … qsub.4 (5 jobs)", "summary/qsub.0"]


def test_similar_groups_keep_different_successors_apart() -> None:
    # 100 forks a_i -> b_i, c_i, and 100 jobs s_j that nothing needs: the a_i are not like the s_j
    jobs = []
    for i in range(100):
        jobs += [job(f"a{i}", kind="table"), job(f"b{i}", deps=[f"a{i}"], kind="table"),
                 job(f"c{i}", deps=[f"a{i}"], kind="table"), job(f"s{i}", kind="table")]
    c = campaign(jobs, "table")
    p = layout(c, collapse="groups")
    check(p, c)
    assert [(n.title, n.jobs[0]) for n in p.nodes] == [
        ("100 × depth 0 (100 jobs)", "a0"), ("200 × depth 1 (200 jobs)", "b0"),
        ("100 × depth 0 (100 jobs)", "s0")]
    assert p.edges == [("n0", "n1")]


def test_sweep_directory_merges_its_jobs() -> None:
    # 200 directories, each 5 independent jobs of different IDs feeding the directory's collect
    jobs = []
    for d in range(200):
        jobs += [job(f"w{d}/qsub.{k}") for k in range(5)]
        jobs.append(job(f"w{d}/qsub.collect", "pending", [f"w{d}/qsub.{k}" for k in range(5)],
                        "ready"))
    c = campaign(jobs)
    p = layout(c)
    check(p, c)
    assert [n.title for n in p.nodes] == ["200 × {qsub.0, qsub.1, qsub.2, …} (1,000 jobs)",
                                          "200 × qsub.collect (200 jobs)"]


def test_table_fan_in_edges_preserved_when_grouped() -> None:
    jobs = [job("jobA", kind="table"), job("jobB", kind="table"),
            job("jobC", "error", ["jobA", "jobB"], kind="table"),
            job("jobD", "pending", ["jobC"], "blocked", kind="table")]
    c = campaign(jobs, "table")
    p = layout(c, collapse="groups")
    where = check(p, c)
    assert len(p.nodes) == 2 and not p.clusters
    ab = next(n for n in p.nodes if n.id == where["jobA"])
    cd = next(n for n in p.nodes if n.id == where["jobC"])
    assert ab.title == "2 × depth 0 (2 jobs)" and ab.lines[-1] == "jobA, jobB"
    assert cd.title == "jobC … jobD (2 jobs)" and cd.counts == {"blocked": 1, "error": 1}
    assert p.edges == [(ab.id, cd.id)]
    assert c.jobs[0].step == ""   # the campaign itself is not changed


def test_fan_out_per_sample_collapses_by_similarity() -> None:
    # 100 samples a_i -> b_i, c_i, d_i -> e_i: no two nodes share their neighbours exactly
    jobs = []
    for i in range(100):
        jobs.append(job(f"a{i}", kind="table"))
        jobs += [job(f"{x}{i}", "pending", [f"a{i}"], "waiting", kind="table") for x in "bcd"]
        jobs.append(job(f"e{i}", "pending", [f"b{i}", f"c{i}", f"d{i}"], "waiting", kind="table"))
    c = campaign(jobs, "table")
    p = layout(c)
    check(p, c)
    assert [n.title for n in p.nodes] == ["100 × depth 0 (100 jobs)", "300 × depth 1 (300 jobs)",
                                          "100 × depth 2 (100 jobs)"]
    assert p.edges == [("n0", "n1"), ("n1", "n2")]


@pytest.mark.parametrize("seed", range(6))
def test_random_dags_keep_edges_and_stay_acyclic(seed: int) -> None:
    rnd = random.Random(seed)
    jobs: list[JobView] = []
    for i in range(400):
        d = f"d{rnd.randrange(12)}"
        deps = sorted({jobs[rnd.randrange(i)].name for _ in range(rnd.choice((0, 1, 1, 1, 2, 3)))}
                      if i else set())
        state = rnd.choice(("done", "running", "error", "pending"))
        jobs.append(job(f"{d}/qsub.{i}", state, deps, "waiting" if state == "pending" else ""))
    for kind in ("run", "table"):
        c = campaign([JobView(j.name, j.state, j.derived, list(j.deps),
                              j.group if kind == "run" else "", j.step if kind == "run" else "")
                      for j in jobs], kind)
        for mode in ("none", "chains", "groups", "auto"):
            for most in (150, 20, 1):
                p = layout(c, collapse=mode, max_nodes=most)
                check(p, c)
                to_mermaid(p)
                if mode == "none":
                    assert len(p.nodes) == 400
                if kind == "run" and mode == "chains":   # chains never cross directories
                    assert all(len({name.rpartition("/")[0] for name in n.jobs}) == 1
                               for n in p.nodes)


def test_bad_modes_are_config_errors() -> None:
    c = campaign(chain_jobs("Si", 2))
    with pytest.raises(ConfigError, match="--collapse"):
        layout(c, collapse="everything")
    with pytest.raises(ConfigError, match="--max-nodes"):
        layout(c, max_nodes=0)
    with pytest.raises(ConfigError, match="--format"):
        to_image("digraph {}", "pdf")


# -- hostile names ---------------------------------------------------------------------------
HOSTILE = ['a"b', "x<y>", "$(rm -rf /)", "with space", "new\nline", "tab\there", "back\\slash",
           "<script>alert(1)</script>", "amp&lt;", "#35;hash", "`tick`", "end", "100%% x;y",
           "\\N\\G", "uni\u2028sep"]


def hostile_campaign(kind: str) -> Campaign:
    names = [f"{h}/qsub.{h}" if kind == "run" else h for h in HOSTILE]
    return campaign([job(n, "error" if i == 0 else "pending", [names[i - 1]] if i else [],
                         "blocked" if i else "", kind) for i, n in enumerate(names)], kind)


@pytest.mark.parametrize("kind", ["run", "table"])
def test_hostile_names_are_shown_literally_in_dot(kind: str) -> None:
    c = hostile_campaign(kind)
    p = layout(c, collapse="none")
    dot = to_dot(p)
    texts = svg_texts(to_image(dot, "svg"))   # graphviz parses it, and the SVG is well-formed XML
    for j in c.jobs:
        assert printable(j.name) in texts, j.name
        if kind == "run":
            assert printable(j.group) in texts
    assert "new\\nline" in " ".join(texts) and not any("\n" in t for t in texts)
    # the only statements are ours: ids are n0, n1, ...; user text lives inside quotes
    body = re.sub(r'"(?:[^"\\]|\\.)*"', '""', dot)
    assert "rm -rf" not in body and "script" not in body and "<y>" not in body


@pytest.mark.parametrize("kind", ["run", "table"])
def test_hostile_names_are_escaped_in_mermaid(kind: str) -> None:
    c = hostile_campaign(kind)
    text = to_mermaid(layout(c, collapse="none"))
    label = r'"(?:[^"<>`#&\\\n]|#\d+;|<br/>)*"'
    statement = re.compile(
        r"---|title: \"[^\"]*\"|flowchart TB|  %% [^\n]*|  classDef \w+ [^\s]+|"
        rf"  subgraph (c\d+|legend) \[{label}\]|\s+(n\d+|legend_\w+)\[{label}\]:::\w+|"
        r"  n\d+ --> n\d+|\s+end|    direction LR")
    for line in text.splitlines():
        assert statement.fullmatch(line), line
    decoded = re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)
    for j in c.jobs:
        assert f'"{printable(j.name)}' in decoded, j.name


