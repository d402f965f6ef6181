"""Image builds and the image cache against the real engine."""

from __future__ import annotations

import time


from orchestrator import lock, refs
from orchestrator.build.image import BuildOptions, ImageBuilder
from orchestrator.build.progress import PlainProgress
from orchestrator.engine import Engine

FUNCTION_SOURCE = """
    import orchestrator

    @orchestrator.function(requirements={requirements!r})
    def {name}():
        return "{greeting}"
"""


def write_function(project, requirements=("six==1.16.0",), greeting="hello", file="app.py"):
    name = f"fn_{project.suffix}"
    project.write(file, FUNCTION_SOURCE.format(requirements=list(requirements), name=name, greeting=greeting))
    return f"{project.root / file}::{name}"


def build(engine: Engine, reference: str, **options) -> "ImageResult":
    declaration = refs.resolve(reference)
    return ImageBuilder(engine, PlainProgress()).ensure(declaration, BuildOptions(**options))


def engine_events_during(engine: Engine, action) -> list[dict]:
    """Run ``action`` and return the image and container events the engine emitted meanwhile."""
    # Event filters take whole seconds: start on a fresh second so that
    # events of earlier steps stay out of the window.
    time.sleep(1.05 - time.time() % 1)
    since = int(time.time())
    result = action()
    until = int(time.time()) + 1
    events = engine.client.api.events(since=since, until=until, decode=True,
                                      filters={"type": ["image", "container"]})
    return result, list(events)


def test_rebuild_unchanged_makes_no_build_call(engine, project):
    reference = write_function(project)
    first = build(engine, reference)
    assert first.env_built or first.app_built

    second, events = engine_events_during(engine, lambda: build(engine, reference))

    # Other builds may share the engine, so only events naming this test's
    # images count: a build of either image would tag it.
    ours = [event for event in events
            if event.get("Action") in ("tag", "create", "build")
            and (event["Actor"]["Attributes"].get("org.orchestrator.env-key") == first.env_key
                 or event["Actor"]["Attributes"].get("image") in (first.reference, first.env_reference))]
    assert second.build_calls == 0
    assert second.image_id == first.image_id
    assert ours == []


def test_changed_requirement_gives_new_key(engine, project):
    reference = write_function(project, requirements=["six==1.16.0"])
    first = build(engine, reference)

    reference = write_function(project, requirements=["six==1.17.0"])
    second = build(engine, reference)

    assert second.env_key != first.env_key
    assert second.env_built


def test_code_change_rebuilds_no_dependency_layer(engine, project):
    reference = write_function(project, greeting="hello")
    first = build(engine, reference)

    reference = write_function(project, greeting="bonjour")
    second = build(engine, reference)

    assert second.env_key == first.env_key
    assert not second.env_built
    assert second.app_built
    assert second.image_id != first.image_id
    first_layers = engine.image(first.image_id)["RootFS"]["Layers"]
    second_layers = engine.image(second.image_id)["RootFS"]["Layers"]
    assert first_layers[:-1] == second_layers[:-1]
    assert first_layers[-1] != second_layers[-1]


def test_no_cache_builds_again(engine, project):
    reference = write_function(project)
    first = build(engine, reference)

    again = build(engine, reference, no_cache=True)

    assert again.env_built
    assert again.app_built
    assert again.env_key == first.env_key


def test_lock_is_reused_and_pins_stay(engine, project, capsys):
    reference = write_function(project, requirements=["six"])
    first = build(engine, reference)
    first_output = capsys.readouterr().err
    declaration = refs.resolve(reference)
    lock_file = lock.lock_path(declaration.path, declaration.name)
    content = lock_file.read_text()

    build(engine, reference, no_cache=True)
    second_output = capsys.readouterr().err

    wrote = f"Wrote {lock_file.name} (pinned requirements with hashes); commit it with app.py"
    assert wrote in first_output.splitlines()
    assert "Wrote " not in second_output
    assert lock_file.read_text() == content
    assert lock.Lock(lock_file, content).pins()["six"] == "1.17.0"
    assert first.spec.lock_digest == lock.Lock(lock_file, content).digest


def test_image_runs_locked_requirement(engine, project):
    reference = write_function(project, requirements=["six==1.16.0"])
    result = build(engine, reference)

    output = engine.client.containers.run(
        result.reference, ["python", "-c", "import six; print(six.__version__)"], remove=True,
    )

    assert output.decode().strip() == "1.16.0"


def test_same_app_same_key_in_another_folder(engine, project, tmp_path):
    reference = write_function(project)
    first = build(engine, reference)
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    source = project.root / "app.py"
    (copy / "app.py").write_text(source.read_text())
    lock_name = lock.lock_path(source, reference.split("::")[1]).name
    (copy / lock_name).write_text((project.root / lock_name).read_text())

    second = build(engine, f"{copy / 'app.py'}::{reference.split('::')[1]}")

    assert second.env_key == first.env_key
    assert second.build_calls == 0
