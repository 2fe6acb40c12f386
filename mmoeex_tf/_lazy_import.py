"""Deferred imports: public names loaded on first use, classes registered.

`import mmoeex_tf` imports neither TensorFlow nor Keras, so that the `mmoeex`
command parses its arguments (and answers `--help`) in well under a second.
Two pieces keep the package working as if everything were imported at once:

* `lazy_package` gives a package (`mmoeex_tf`, `mmoeex_tf.runs`, ...) public
  names that import their module on first use.
* `register_with_keras` imports the modules defining the classes a saved
  `.keras` file names as soon as Keras is imported: Keras only finds the
  classes registered with `keras.saving.register_keras_serializable`, so
  `import mmoeex_tf` followed by `keras.saving.load_model(...)` needs them
  imported by then. Until then it also silences TensorFlow's native start-up
  lines, whoever imports TensorFlow.
"""

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types


class _LazyPackage(types.ModuleType):
    """A package whose public names import their module on first use."""

    def __getattr__(self, name):
        # Called only for a name not set on the package yet; it stays set.
        try:
            module = self._lazy_exports[name]
        except KeyError:
            raise AttributeError(
                f"module {self.__name__!r} has no attribute {name!r}"
            ) from None
        value = getattr(importlib.import_module(module), name)
        super().__setattr__(name, value)
        return value

    def __setattr__(self, name, value):
        # The import system sets every submodule it loads on its package. A
        # public name that is also the name of the submodule defining it
        # (the function `mmoeex_tf.runs.run` of the module of that name)
        # keeps naming the public object, as with eager imports.
        if (
            isinstance(value, types.ModuleType)
            and self._lazy_exports.get(name) == value.__name__
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)

    def __dir__(self):
        return sorted({*super().__dir__(), *self._lazy_exports})


def lazy_package(name, exports):
    """Makes a package's public names import their module on first use.

    Call it in the package's `__init__.py`, in place of the imports of its
    public names. `from package import name`, `package.name` and
    `dir(package)` work as with those imports.

    Args:
        name: The package's `__name__`.
        exports: Mapping of module name -> the public names it defines.

    Returns:
        The public names, sorted: the package's `__all__`.
    """
    package = sys.modules[name]
    package._lazy_exports = {
        public: module for module, names in exports.items() for public in names
    }
    package.__class__ = _LazyPackage
    return sorted(package._lazy_exports)


def register_with_keras(modules):
    """Imports `modules` as soon as Keras is imported (now if it is already).

    Until then an import hook silences TensorFlow's native start-up lines
    (`_native_stderr_dropped`) and watches the imports of TensorFlow, Keras
    and mmoeex_tf's modules: once the outermost of them has finished with
    Keras imported, it imports `modules`, registering their Keras classes,
    and removes itself. Only the outermost: Keras and TensorFlow import each
    other part-way through their own imports, and a module of mmoeex_tf
    that imports Keras has run only in part.

    Args:
        modules: Names of the modules to import.
    """
    if "keras" in sys.modules:
        _import_all(modules)
    else:
        sys.meta_path.insert(0, _ImportHook(modules))


def _import_all(modules):
    for module in modules:
        importlib.import_module(module)


class _ImportHook(importlib.abc.MetaPathFinder):
    """Runs the loading of TensorFlow, Keras and mmoeex_tf's modules.

    Each is found on `sys.path` (or its package's `__path__`) as the import
    system would find it, and loaded by its own loader inside `running`.
    """

    def __init__(self, modules):
        self.modules = modules
        self.depth = 0  # imports of the watched modules now running

    def find_spec(self, name, path=None, target=None):
        if name not in ("tensorflow", "keras") and not name.startswith("mmoeex_tf."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:  # not a namespace
            spec.loader = _HookedLoader(spec.loader, self)
        return spec

    @contextlib.contextmanager
    def running(self, name):
        """Runs the import of module `name`; the outermost one may register."""
        self.depth += 1
        try:
            if name == "tensorflow":
                with _native_stderr_dropped():
                    yield
            else:
                yield
        finally:
            self.depth -= 1
        if self.depth == 0 and "keras" in sys.modules:
            sys.meta_path.remove(self)
            _import_all(self.modules)


class _HookedLoader(importlib.abc.Loader):
    """A module's own loader, its module run inside `_ImportHook.running`."""

    def __init__(self, loader, hook):
        self.loader = loader
        self.hook = hook

    def __getattr__(self, name):  # get_code, get_resource_reader, ...
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self.loader
        with self.hook.running(module.__name__):
            self.loader.exec_module(module)


@contextlib.contextmanager
def _native_stderr_dropped():
    """Drops what native code writes to the standard error meanwhile.

    Some of the lines TensorFlow's native libraries write while loading
    (absl's "before absl::InitializeLog()" notice, plugin registration
    errors on GPU builds, oneDNN's notice) ignore `TF_CPP_MIN_LOG_LEVEL`.
    With that level at 2 or more (the default `mmoeex_tf` sets) they are
    dropped; a lower level shows them all. Python errors still reach the
    console.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2").strip() in ("0", "1"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
