"""Version selection: semver ranges, tag patterns, newest build, digest tracking, newest model."""

from __future__ import annotations

from datetime import timedelta

from builders import T0, Driver, compiled, digest, image, model

from promoter.core.compiled import normalize_image
from promoter.core.events import ImageBuilt
from promoter.core.observations import ImageObserved


def pipeline(select: str, source: str = "image: reg/app") -> Driver:
    return Driver(
        compiled(f"""
apiVersion: promoter/v1
kind: Pipeline
metadata: {{name: p}}
spec:
  repository: {{url: ./r}}
  artifacts:
    - {{name: app, {source}, select: {select}}}
  environments:
    - {{name: dev, auto: true, update: [{{file: f.yaml, set: {{v: "${{app.version}}"}}}}]}}
""")
    )


def best(driver: Driver) -> str | None:
    live = driver.live("dev")
    return live["app"] if live else None


def test_semver_takes_the_highest_in_range_with_or_without_v() -> None:
    driver = pipeline('{semver: "^1.2.0"}')
    for tag in ["1.2.0", "v1.10.0", "1.9.0", "1.3.0-rc.1", "2.0.0", "latest"]:
        driver.feed(image("reg/app", tag))
    assert best(driver) == "v1.10.0"


def test_tag_pattern_sorts_numerically_by_default() -> None:
    driver = pipeline(r'{tagPattern: "^build-(?P<version>\\d+)$"}')
    for tag in ["build-9", "build-10", "build-2", "release-99"]:
        driver.feed(image("reg/app", tag))
    assert best(driver) == "build-10"


def test_tag_pattern_can_sort_lexically() -> None:
    driver = pipeline(r'{tagPattern: "^main-(?P<version>[0-9a-f]+)$", sort: lexical}')
    for tag in ["main-0a", "main-ff", "main-1b"]:
        driver.feed(image("reg/app", tag))
    assert best(driver) == "main-ff"


def test_newest_build_follows_event_time_not_arrival() -> None:
    driver = pipeline("{newestBuild: true}")
    driver.feed(image("reg/app", "b", at=T0 + timedelta(minutes=2)))
    driver.feed(image("reg/app", "a", at=T0 + timedelta(minutes=1)))  # built earlier, arrived later
    assert best(driver) == "b"
    driver.feed(image("reg/app", "c", at=T0 + timedelta(minutes=3)))
    assert best(driver) == "c"


def test_digest_tracks_a_mutable_tag() -> None:
    driver = pipeline("{digest: stable}")
    driver.feed(
        ImageObserved(ImageBuilt(repository="reg/app", tag="stable", digest=digest("one")), T0)
    )
    driver.feed(
        ImageObserved(ImageBuilt(repository="reg/app", tag="canary", digest=digest("x")), T0)
    )
    assert best(driver) == digest("one")
    later = T0 + timedelta(minutes=1)
    driver.feed(
        ImageObserved(ImageBuilt(repository="reg/app", tag="stable", digest=digest("two")), later)
    )
    assert best(driver) == digest("two")


def test_newest_model_is_the_latest_registered() -> None:
    driver = pipeline("{newest: true}", source="model: fraud")
    driver.feed(model("fraud", "3", at=T0 + timedelta(minutes=1)))
    driver.feed(model("fraud", "4", at=T0 + timedelta(minutes=2)))
    driver.feed(model("other", "9", at=T0 + timedelta(minutes=3)))
    assert best(driver) == "4"


def test_repushed_tag_with_new_digest_is_a_new_bundle() -> None:
    driver = pipeline('{semver: "*"}')
    driver.feed(
        ImageObserved(ImageBuilt(repository="reg/app", tag="1.0.0", digest=digest("a")), T0)
    )
    first = driver.state.latest
    driver.feed(
        ImageObserved(ImageBuilt(repository="reg/app", tag="1.0.0", digest=digest("a")), T0)
    )
    assert driver.state.latest == first  # the same build again: nothing new
    driver.feed(
        ImageObserved(
            ImageBuilt(repository="reg/app", tag="1.0.0", digest=digest("b")),
            T0 + timedelta(seconds=1),
        )
    )
    assert driver.state.latest is not None and first is not None
    assert driver.state.latest.id != first.id
    assert driver.state.latest.versions["app"].digest == digest("b")


def test_image_names_match_docker_hub_aliases_case_insensitively() -> None:
    assert normalize_image("docker.io/library/Nginx") == "nginx"
    assert normalize_image("index.docker.io/acme/app/") == "acme/app"
    assert normalize_image("GHCR.io/Acme/App") == "ghcr.io/acme/app"
    driver = pipeline("{newestBuild: true}", source="image: docker.io/acme/app")
    driver.feed(image("acme/app", "x"))
    assert best(driver) == "x"
