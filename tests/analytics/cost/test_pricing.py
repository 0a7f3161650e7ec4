import datetime as dt

import pytest

from gpufleet.analytics.cost.pricing import (
    CatalogError,
    load_catalog,
    price_rows,
    split_node_price,
    split_node_price_parts,
)


def test_default_catalog_prices_h100_per_gpu_hour():
    cat = load_catalog()
    assert cat.as_of == dt.date(2026, 1, 1)
    rows = {(r.provider, r.region, r.gpu_model, r.pricing_category): r.usd_per_gpu_hour for r in price_rows(cat)}
    assert rows[("aws", "us-east-1", "NVIDIA H100 80GB HBM3", "on_demand")] == pytest.approx(6.88)
    assert rows[("aws", "us-east-1", "NVIDIA H100 80GB HBM3", "spot")] == pytest.approx(6.88 * 0.55)
    assert rows[("aws", "us-east-1", "NVIDIA H100 80GB HBM3", "reserved")] == pytest.approx(6.88 * 0.43)
    assert rows[("aws", "eu-west-1", "NVIDIA H200", "on_demand")] == pytest.approx(7.9125)
    assert rows[("aws", "us-east-1", "NVIDIA L40S", "on_demand")] == pytest.approx(1.86)


def test_opencost_fixed_ratio_split_of_a_node_price():
    # OpenCost's default rates: $0.031611/vCPU-h, $0.004237/GiB-h, $0.95/GPU-h. A $10/h node with 4 vCPUs,
    # 16 GiB and 1 GPU: GPU weight 0.95 of 4*0.031611 + 16*0.004237 + 0.95 = 1.144236.
    assert split_node_price(10.0, 4, 16, 1) == pytest.approx(10 * 0.95 / 1.144236)
    # Two GPUs: the GPU part doubles in weight and splits over two GPUs.
    assert split_node_price(10.0, 4, 16, 2) == pytest.approx(10 * 1.9 / (0.126444 + 0.067792 + 1.9) / 2)


def test_opencost_spec_worked_example_of_the_ratio_split():
    # The OpenCost specification (Appendix A): a node with 1 GPU, 1 CPU and 1 GB of RAM costs $35/month; base
    # prices GPU $30, CPU $30, RAM $10 keep their ratio and are normalised to $15, $15 and $5.
    parts = split_node_price_parts(35.0, 1, 1, 1, rates={"cpu": 30.0, "ram": 10.0, "gpu": 30.0})
    assert parts == pytest.approx({"cpu": 15.0, "ram": 5.0, "gpu": 15.0})
    assert sum(parts.values()) == pytest.approx(35.0)
    assert split_node_price(35.0, 1, 1, 1, rates={"cpu": 30.0, "ram": 10.0, "gpu": 30.0}) == pytest.approx(15.0)
    with pytest.raises(ValueError, match="cannot split a node price"):
        split_node_price_parts(35.0, 0, 0, 0)


def test_ratio_split_from_the_catalog():
    # An instance priced with gpu_share: ratio gets the GPU part of its price, not price / GPUs.
    from gpufleet.analytics.cost.pricing import Instance

    inst = Instance(provider="onprem", instance_type="box", gpu_model="G", gpus=1, vcpus=1, memory_gib=1,
                    on_demand_usd_per_hour=35.0, gpu_share="ratio", regions=["r"], source="s")
    parts = split_node_price_parts(35.0, 1, 1, 1)
    assert inst.on_demand_gpu_hour() == pytest.approx(parts["gpu"])
    assert parts["gpu"] == pytest.approx(35.0 * 0.95 / (0.031611 + 0.004237 + 0.95))


@pytest.mark.parametrize(("text", "needle"), [
    ("as_of: 2026-01-01\ninstances: []\n", "key instances"),
    ("as_of: 2026-01-01\nenergy: {pue: 0.5}\ninstances: []\n", "key energy.pue"),
    ("as_of: 2026-01-01\ninstances:\n  - provider: aws\n    instance_type: x\n    gpu_model: H\n    gpus: 0\n"
     "    vcpus: 1\n    memory_gib: 1\n    on_demand_usd_per_hour: 1\n    regions: [r]\n    source: s\n",
     "key instances.0.gpus"),
    ("as_of: [unclosed\n", "not valid YAML"),
])
def test_bad_catalog_names_file_and_key(tmp_path, text, needle):
    f = tmp_path / "prices.yaml"
    f.write_text(text)
    with pytest.raises(CatalogError) as err:
        load_catalog(f)
    assert str(f) in str(err.value) and needle in str(err.value)


def test_missing_catalog_file(tmp_path):
    with pytest.raises(CatalogError, match="no such catalog file"):
        load_catalog(tmp_path / "nope.yaml")
