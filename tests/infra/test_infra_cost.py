"""docs/COST.md and deploy.cost agree, the default stays within target, and the cost
model describes the deployment Terraform really makes."""

from __future__ import annotations

import datetime
import re

import pytest

from deploy import cost
from tests.infra.terraform_model import ROOT, Terraform

DOC = (ROOT / "docs" / "COST.md").read_text(encoding="utf-8")


def _section(name: str) -> str:
    match = re.search(rf"<!-- cost:{name}:start -->\n(.*?)\n<!-- cost:{name}:end -->", DOC, flags=re.S)
    assert match, f"docs/COST.md has no {name} section"
    return match.group(1)


def test_the_doc_tables_are_the_model() -> None:
    """Edit deploy/cost_model.json, then paste `python -m deploy.cost --markdown` into the doc."""
    assert _section("items") == cost.render_items(cost.estimate())
    assert _section("prices") == cost.render_prices()
    assert _section("scenarios") == cost.render_scenarios()
    assert _section("measured") == cost.render_measured()  # the request lines' inputs, counted not guessed


def test_default_deployment_is_within_target_and_the_doc_says_so() -> None:
    total = cost.estimate().total
    assert total == pytest.approx(sum(item.usd for item in cost.estimate().items))
    assert 0 < total <= cost.load_model()["target_usd_per_month"]
    assert f"| Default deployment, running 24/7 at demo load | **{total:.2f}** |" in DOC
    assert "| After `./project_down.sh` | **0.00** |" in DOC


def test_the_doc_states_the_basis_of_the_estimate() -> None:
    model = cost.load_model()
    as_of = datetime.date.fromisoformat(model["prices_as_of"])
    assert f"**{as_of.isoformat()}**" in DOC
    assert "list-price estimate" in DOC.lower() and model["region"] == "us-east-1" and "us-east-1" in DOC


def test_scenario_defaults_are_terraform_defaults(tf: Terraform) -> None:
    default = cost.Scenario()
    assert default.shards == tf.default("kinesis_shard_count")
    assert default.kinesis_on_demand == tf.default("kinesis_on_demand")
    assert default.consumers == tf.default("consumer_min_count")
    assert default.portal == tf.default("enable_portal")
    assert default.spot == (tf.default("fargate_spot_weight") > 0 and tf.default("fargate_on_demand_weight") == 0)
    assert default.on_demand_base == tf.default("fargate_on_demand_base") == 1
    for role, size in cost.load_model()["tasks"].items():
        assert size["vcpu"] * 1024 == tf.default(f"{role}_cpu"), role
        assert size["memory_gb"] * 1024 == tf.default(f"{role}_memory"), role


def test_each_knob_moves_the_bill_the_expected_way() -> None:
    base = cost.estimate().total
    assert cost.estimate(cost.Scenario(shards=2)).total - base == pytest.approx(10.95)
    assert base < cost.estimate(cost.Scenario(consumers=2)).total < cost.estimate(cost.Scenario(consumers=4)).total
    assert cost.estimate(cost.Scenario(spot=False)).total > base > cost.estimate(cost.Scenario(on_demand_base=0)).total
    consumers = {i.usage for i in cost.estimate(cost.Scenario(consumers=3)).items if i.item == "Fargate consumer"}
    assert consumers == {"1 × 0.25 vCPU / 1 GB, on-demand, 24/7", "2 × 0.25 vCPU / 1 GB, Spot, 24/7"}
    assert cost.estimate(cost.Scenario(portal=True)).total > base
    assert cost.estimate(cost.Scenario(kinesis_on_demand=True)).total > base
    names = {item.item for item in cost.estimate(cost.Scenario(portal=True)).items}
    assert {"Application Load Balancer", "Fargate portal"} <= names


def test_command_line_prints_the_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert cost.main(["--markdown"]) == 0
    assert cost.render_items(cost.estimate()) in capsys.readouterr().out
    assert cost.main(["--shards", "2", "--consumers", "2"]) == 0
    assert f"**{cost.estimate(cost.Scenario(shards=2, consumers=2)).total:.2f}**" in capsys.readouterr().out


def test_the_model_prices_the_architecture_the_tasks_run_on(tf: Terraform) -> None:
    """Fargate bills ARM64 (Graviton) 20 % below x86: the model's Fargate prices must be those of the
    architecture every task definition names (and the image is built for)."""
    prices = cost.load_model()["prices"]
    assert tf.image_platform() == "linux/arm64"
    assert all("ARM64" in prices[name]["service"] for name in ("fargate_vcpu_hour", "fargate_gb_hour"))
    assert "ARM64" in DOC.split("## The default deployment")[0]  # the basis names it before any number
