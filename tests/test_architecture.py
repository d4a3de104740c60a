"""The shape of the package (docs/architecture.md): imports flow one way, the model core imports
nothing above it, RDKit lives in the chemistry modules, the CLI only parses, and every kind of
sequence has a domain that the layers above ask instead of branching themselves."""

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "seqvae"


@pytest.fixture(scope="module")
def graphs():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "docs" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module
    spec.loader.exec_module(module)
    return module, module.import_graph()


def test_the_import_graph_has_no_circles(graphs):
    tools, graph = graphs
    assert "seqvae.trainer" in graph and "seqvae.model.vae" in graph  # the graph was read
    assert tools.circles(tools.without_package_faces(graph)) == []


def test_a_circle_would_be_found(graphs):
    tools, _ = graphs
    made_up = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert tools.circles(made_up) == [["a", "b", "c"]]


def test_the_model_core_imports_nothing_above_it(graphs):
    tools, graph = graphs
    above = ("seqvae.search", "seqvae.metrics", "seqvae.trainer", "seqvae.trained",
             "seqvae.cli", "seqvae.domains", "seqvae.callbacks", "seqvae.prepare",
             "seqvae.evaluation", "seqvae.generate", "seqvae.checkpoint", "seqvae.chem")
    for module in (m for m in graph if m.startswith("seqvae.model")):
        reached = tools.reaches(graph, module)
        assert not [m for m in reached if m.startswith(above)], module


def test_rdkit_is_imported_only_by_the_chemistry_modules():
    chemistry = {"seqvae/chem.py", "seqvae/standardize.py", "seqvae/search/objectives.py",
                 "seqvae/search/pmo.py",
                 "seqvae/metrics/_features.py",
                 "seqvae/metrics/reference.py", "seqvae/metrics/molecules.py",
                 "seqvae/metrics/_compute.py"}
    users = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
             if re.search(r"^\s*(from|import) rdkit", p.read_text(), re.M)}
    assert users and users <= chemistry, users - chemistry


def test_the_cli_only_parses():
    """No verb function of cli.py holds a loop: the work is one API call or two."""
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    verbs = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name.startswith("_")]
    assert len(verbs) >= 8
    for function in verbs:
        loops = [n for n in ast.walk(function) if isinstance(n, (ast.For, ast.While))]
        if function.name == "_evaluate":  # printing the metrics, one line each
            assert len(loops) == 1
            continue
        assert not loops, function.name


def test_no_molecule_text_branches_above_the_domains():
    """The trainer, the user-facing model and the CLI ask the domain; they never test which
    kind of sequence they hold."""
    for name in ("trainer.py", "trained.py", "cli.py", "callbacks.py", "evaluation.py",
                 "prepare.py"):
        source = (PACKAGE / name).read_text()
        assert not re.search(r"if .*\bmolecular\b|MOLECULAR_KINDS|\bdata\.text\b|"
                             r"kind in \(|\"valid\" in table", source), name


def test_every_representation_has_a_domain():
    from seqvae.config import REPRESENTATIONS
    from seqvae.domains import all_domains, domain_for
    from seqvae.errors import ConfigError

    assert {d.name for d in all_domains()} == {"molecules", "text"}
    assert {domain_for(kind).name for kind in REPRESENTATIONS} == {"molecules", "text"}
    assert domain_for("selfies") is domain_for("smiles")
    with pytest.raises(ConfigError, match="no domain handles the representation 'protein'"):
        domain_for("protein")


def test_importing_seqvae_loads_neither_torch_nor_rdkit():
    import subprocess
    code = ("import sys, seqvae; seqvae.ConfigError; "
            "print('torch' in sys.modules, 'rdkit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    assert out == ["False", "False"]


def test_a_text_model_never_imports_rdkit(tmp_path):
    """Text users never need chemistry: the text domain's path does not import RDKit."""
    import subprocess
    code = ("import sys\n"
            "from seqvae.domains import domain_for\n"
            "from seqvae.tokenizers import WordTokenizer\n"
            "tok = WordTokenizer.build(['the cat sat', 'a dog ran'])\n"
            "d = domain_for('word')\n"
            "print(d.table(['the cat'], [1.0]).columns.tolist(), d.encode(['the cat', '...'], tok, 10)[1][1])\n"
            "print('rdkit' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.splitlines()
    assert out == ["['text', 'NLL'] no words: only punctuation or symbols", "False"]
