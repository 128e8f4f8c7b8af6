import pytest

from digitlab.exceptions import ConfigError
from digitlab.study.config import load_toml, parse_override, resolve, to_toml


def test_defaults_and_profile():
    cfg = resolve({"study": {"tasks": ["overview"]}})
    assert cfg.study.profile == "standard" and cfg.study.dataset == "mnist"
    assert cfg.tasks["overview"].samples_per_class == 10
    quick = resolve({"study": {"tasks": ["overview"], "profile": "quick"}})
    assert quick.tasks["overview"].samples_per_class == 8
    assert quick.study.name == "mnist-quick"


def test_file_then_overrides_win():
    data = {"study": {"tasks": ["overview"]}, "overview": {"samples_per_class": 5}}
    assert resolve(data).tasks["overview"].samples_per_class == 5
    assert resolve(data, ["overview.samples_per_class=3"]).tasks["overview"].samples_per_class == 3
    assert (
        resolve(data, profile="quick").tasks["overview"].samples_per_class == 5
    )  # the file beats the profile


@pytest.mark.parametrize(
    "data, overrides, match",
    [
        ({"study": {"tasks": ["overview"], "colour": "red"}}, [], "study.colour: unknown key"),
        ({"study": {"tasks": ["overview"]}, "overview": {"samples": 3}}, [], "overview.samples: unknown key"),
        ({"study": {"tasks": ["overview"], "seed": "zero"}}, [], "study.seed: expected int"),
        ({"study": {"tasks": ["overview"], "seed": True}}, [], "study.seed: expected int"),
        ({"study": {"tasks": ["overview"], "profile": "huge"}}, [], "study.profile"),
        ({"study": {"tasks": ["overview"], "device": "tpu"}}, [], "study.device"),
        ({"study": {"tasks": ["nonsense"]}}, [], "task 'nonsense'"),
        ({"study": {"tasks": []}}, [], "study.tasks: empty"),
        ({"study": {"tasks": ["overview"]}, "bogus": {"a": 1}}, [], "task 'bogus'"),
        ({"study": {"tasks": ["overview"]}}, ["overview.samples_per_class=0"], "out of range"),
        ({"study": {"tasks": ["overview"]}}, ["nodot=1"], "section.key=value"),
        ({"study": {"tasks": "overview"}}, [], "expected a list"),
    ],
)
def test_bad_values_name_the_key(data, overrides, match):
    with pytest.raises(ConfigError, match=match) as err:
        resolve(data, overrides)
    assert "\n" not in str(err.value)


def test_override_value_parsing():
    assert parse_override("a.b=3") == ("a", "b", 3)
    assert parse_override("a.b=0.5") == ("a", "b", 0.5)
    assert parse_override("a.b=[1, 2]") == ("a", "b", [1, 2])
    assert parse_override("a.b=hello") == ("a", "b", "hello")
    assert parse_override("a.b=true") == ("a", "b", True)


def test_toml_round_trip(tmp_path):
    cfg = resolve({"study": {"tasks": ["overview"], "seed": 7}})
    path = tmp_path / "c.toml"
    path.write_text(to_toml(cfg))
    again = resolve(load_toml(path))
    assert again.to_dict() == cfg.to_dict()


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_toml(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nseed = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(bad)


def test_dataset_profiles_apply_to_their_dataset_and_profile_and_the_file_still_wins():
    fashion = resolve({"study": {"dataset": "fashion-mnist"}}).tasks["classify"]
    assert (fashion.cnn_recipe, fashion.cnn_augment, fashion.svm_pca) == ("wide", "shift+hflip", 100)
    assert resolve({"study": {"dataset": "mnist"}}).tasks["classify"].cnn_recipe == "strong"
    assert (
        resolve({"study": {"dataset": "fashion-mnist", "profile": "quick"}}).tasks["classify"].cnn_recipe
        == "fast"
    )
    mine = resolve({"study": {"dataset": "fashion-mnist"}, "classify": {"cnn_recipe": "strong"}}).tasks[
        "classify"
    ]
    assert (mine.cnn_recipe, mine.cnn_augment) == ("strong", "shift+hflip")


def test_zoo_cnn_augment_and_the_wide_recipe_reach_the_estimator():
    from digitlab.models.zoo import ZooSettings, build_model, describe_model

    est = build_model("cnn", ZooSettings(cnn_recipe="wide", cnn_augment="shift+hflip"))
    assert est.augment == "shift+hflip" and est.net_params["width"] == 32 and est.epochs == 10
    assert "shift + hflip augmentation" in describe_model(
        "cnn", ZooSettings(cnn_recipe="wide", cnn_augment="shift+hflip")
    )
    with pytest.raises(ConfigError, match="cnn_augment 'twirl'"):
        resolve({"classify": {"cnn_augment": "twirl"}})
