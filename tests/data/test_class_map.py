"""The global class-name → id map."""
from __future__ import annotations

import pytest
from datasets import ClassLabel

from u2cdr.data.class_map import ClassMap, ClassMapError


def test_ids_follow_the_given_order_through_a_class_label() -> None:
    class_map = ClassMap(["zebra", "ant", "mole"])
    assert class_map.class_label == ClassLabel(names=["zebra", "ant", "mole"])
    assert class_map.ids_of(["mole", "zebra", "mole"], where="test").tolist() == [2, 0, 2]
    assert class_map.id_of("ant") == 1 and "ant" in class_map and len(class_map) == 3


def test_discovered_map_is_the_sorted_union() -> None:
    assert ClassMap.from_found(["b", "a", "b", "C"]).names == ["C", "a", "b"]


def test_duplicates_and_empty_names_are_refused() -> None:
    with pytest.raises(ClassMapError, match="repeated: a"):
        ClassMap(["a", "b", "a"])
    with pytest.raises(ClassMapError, match="at least one"):
        ClassMap([])


def test_unknown_names_are_all_listed_with_a_hint_and_the_valid_names() -> None:
    class_map = ClassMap(["Alarm_Clock", "Bike", "Mug"])
    with pytest.raises(ClassMapError) as error:
        class_map.ids_of(["Bike", "alarm_clock", "Bicycle", "Piano"], where="file.parquet")
    message = str(error.value)
    assert message.startswith("3 label(s) not in the class map:")
    assert "file.parquet: 'alarm_clock'  (did you mean 'Alarm_Clock'?)" in message
    assert "file.parquet: 'Piano'\n" in message  # no close match, no hint
    assert message.endswith("Valid class names (3): Alarm_Clock, Bike, Mug")
