"""The network works in any region: the subnets' zones come from the region's available zones,
asked of EC2 (moto) with exactly the data source's filters, not from guessed zone letters."""

from __future__ import annotations

import boto3
import pytest

from tests.infra.support import ACCOUNT
from tests.infra.terraform_model import Terraform
from tests.infra.terraform_render import Renderer


@pytest.mark.parametrize("region", ["us-east-1", "ap-northeast-1", "us-west-1", "eu-west-3"])
def test_every_subnet_gets_an_available_zone_in_any_region(tf: Terraform, moto: str, region: str) -> None:
    source = tf.data["aws_availability_zones"]["available"]
    renderer = Renderer(tf, ACCOUNT, {"region": region})
    filters = [{"Name": f["name"], "Values": renderer.render(f["values"])} for f in source.get("filter", [])]
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=moto)
    zones = ec2.describe_availability_zones(Filters=[*filters, {"Name": "state", "Values": [source["state"]]}])
    names = sorted(zone["ZoneName"] for zone in zones["AvailabilityZones"])
    subnet = tf.resource("aws_subnet", "public")
    assert subnet["availability_zone"] == "${sort(data.aws_availability_zones.available.names)[count.index]}"
    assert len(names) >= subnet["count"], f"{region}: {names} cannot hold {subnet['count']} subnets"
    assert len({name[-1] for name in names[:subnet["count"]]}) == subnet["count"]  # two distinct zones
