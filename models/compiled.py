"""Compiled boosters: each LightGBM booster of a bundle turned into machine code (lleaves), bit for bit.

Why: a request walks about 1,900 trees (three quantile boosters, four horizon boosters, a six-class
department booster). In a 1,000-row batch LightGBM spends ~100 µs per row on them; the same trees compiled
to native code by lleaves (LLVM) take ~26 µs on one thread (~15 µs on two), which is what lets
`/estimate_batch` reach its throughput target. One-row requests stay with LightGBM (see
`models.bundle.COMPILED_MIN_ROWS`).

Bit for bit: lleaves sums a row's trees block by block (blocks of trees walked for all rows in turn, for
the instruction cache) and adds each block's sum to the running total; LightGBM adds tree after tree to
one running total. Float addition is not associative, so the two differ in the last bits (~1e-14).
`_sequential_instruction_block` is lleaves' own block generator (MIT licence, lleaves 1.3.0) changed in
one place: a block starts from the running total instead of zero, so the order of additions is
LightGBM's. Boosters are compiled for raw scores (the objective's link is applied by `models.bundle`, the
same code for both engines), and `CompiledPredict.check` proves the compiled code equal to
`Booster.predict(raw_score=True)` on a probe matrix before a bundle uses it; anything else falls back to
LightGBM, so numbers never depend on whether a machine compiled its models.

Compiling takes time (34 s on two cores for the production champions) and its output is specific
to this CPU, so objects are cached under `ETA311_HOME/compiled`, named by a hash of the booster text, the
lleaves and llvmlite versions and the host CPU. `eta311 promote` and `eta311 serve` fill the cache; the
service only loads from it (a worker never compiles).

Loading an object runs its code, so the cache is trusted only as far as it can be checked: the compiler
records the sha256 of each object and text it writes (`KEY.sha256`, written last), and `load_compiled`
refuses (LightGBM then predicts) an object whose digest differs, or whose file or folder another user could
have written (not owned by this user, or group- or world-writable). A same-user writer is out of reach of
any check: it could change the service's code as well.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

COMPILED_DIR_ENV = "ETA311_COMPILED_DIR"  # set by `eta311 serve` for its workers: where compiled boosters are
LLEAVES_BLOCK_SIZE = 8  # trees per block of the row loop (lleaves: 34; 8 walked the quantile booster ~15% faster)
OPT_LEVEL = 1  # LLVM optimisation and code generation level (see compile_booster)
ENTRY_POINT = "forest_root"  # the function lleaves.Model looks up when it loads a cached object
CACHE_FORMAT = "3"  # bump when the generated code changes (the key then changes, old objects are ignored)
THREADED_ROWS = 512  # batches at least this large are split across PREDICT_THREADS threads
PREDICT_THREADS = 2
COMPILED_PROBE_ROWS = 256  # random rows (within each feature's training range) the compiled code is checked on
_PATCH_LOCK = threading.Lock()


class CompiledRefused(ValueError):
    """A cached compiled booster that must not be loaded (its digest or its permissions are wrong)."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest_file(obj: Path) -> Path:
    return obj.with_suffix(".sha256")


def _record_digests(obj: Path, text: Path) -> None:
    """Write KEY.sha256 (atomically, after the object and text): an object without it is not compiled."""
    record = _digest_file(obj)
    partial = record.with_name(f"{record.name}.{os.getpid()}.{threading.get_ident()}.partial")
    partial.write_text(json.dumps({"object": _sha256(obj), "text": _sha256(text)}))
    os.replace(partial, record)


def _writable_by_others(path: Path) -> str | None:
    info = path.stat()
    if info.st_uid != os.getuid():
        return f"{path.name} is owned by uid {info.st_uid}, not this user"
    if info.st_mode & 0o022:
        return f"{path.name} is writable by group or others (mode {info.st_mode & 0o777:o})"
    return None


def verify_cached(obj: Path, text: Path) -> None:
    """Raise `CompiledRefused` naming the file unless `obj` and `text` are as the compiler recorded them and
    only this user could have written them (see the module docstring)."""
    record = _digest_file(obj)
    if not record.is_file():
        raise CompiledRefused(f"{obj.name}: no digest recorded by the compiler ({record.name} missing)")
    for path in (obj.parent, obj, text, record):
        problem = _writable_by_others(path)
        if problem:
            raise CompiledRefused(f"{obj.name}: {problem}")
    try:
        expected = json.loads(record.read_text())
    except ValueError as error:
        raise CompiledRefused(f"{record.name}: unreadable digest record ({error})") from error
    for kind, path in (("object", obj), ("text", text)):
        actual = _sha256(path)
        if actual != expected.get(kind):
            raise CompiledRefused(
                f"{path.name}: sha256 {actual[:16]} ({path.stat().st_size} bytes) is not "
                f"{str(expected.get(kind))[:16]} recorded by the compiler"
            )


def available() -> bool:
    """Whether lleaves (and llvmlite) can be imported here."""
    try:
        import lleaves  # noqa: F401
    except Exception:  # ImportError, or llvmlite failing to load its shared library
        return False
    return True


def host_target() -> str:
    """The CPU the objects are compiled for: LLVM's host name and feature string."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    return f"{llvm.get_host_cpu_name()}:{llvm.get_host_cpu_features().flatten()}"


def cache_key(model_text: bytes, target: str) -> str:
    """Names a compiled object: the booster text, the compiler versions and the target CPU."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for part in (CACHE_FORMAT, version("lleaves"), version("llvmlite"), target):
        digest.update(part.encode() + b"\0")
    digest.update(model_text)
    return digest.hexdigest()[:32]


def compilable_text(model_text: str) -> str:
    """The booster text lleaves accepts. A booster trained with a custom objective (the quantile models'
    pinball loss) has no `objective=` line, which lleaves requires; we compile raw scores, so any objective
    with an identity link is the same code."""
    if "\nobjective=" in model_text:
        return model_text
    head, sep, tail = model_text.partition("\nfeature_names=")
    if not sep:
        raise ValueError("not a LightGBM model text: no feature_names line")
    return f"{head}\nobjective=regression{sep}{tail}"


def _sequential_instruction_block(
    instr_block_idx: int,
    forest: Any,
    root_func: Any,
    tree_funcs: list[Any],
    setup_block: Any,
    next_block: Any,
    eval_obj_func: bool,
    use_fp64: bool,
) -> None:
    """lleaves 1.3.0's `_populate_instruction_block` (MIT licence), with the row's running total loaded
    before the block's first tree instead of added after its last one: trees are summed in LightGBM's order.
    """
    from lleaves.compiler.codegen import codegen as cg
    from llvmlite import ir

    data_arr, out_arr, start_index, end_index = root_func.args

    builder = ir.IRBuilder(setup_block)
    start_index = builder.zext(start_index, cg.LONG)
    end_index = builder.zext(end_index, cg.LONG)
    loop_iter = builder.alloca(cg.LONG, 1, "loop-idx")
    builder.store(start_index, loop_iter)
    condition_block = root_func.append_basic_block("loop-condition")
    builder.branch(condition_block)

    builder = ir.IRBuilder(condition_block)
    comp = builder.icmp_signed("<", builder.load(loop_iter), end_index)
    core_block = root_func.append_basic_block("loop-core")
    builder.cbranch(comp, core_block, next_block)

    builder = ir.IRBuilder(core_block)
    args = []
    loop_iter_reg = builder.load(loop_iter)
    n_args = ir.Constant(cg.LONG, forest.n_args)
    iter_mul_nargs = builder.mul(loop_iter_reg, n_args)
    idx = (builder.add(iter_mul_nargs, cg.lconst(i)) for i in range(forest.n_args))
    raw_ptrs = [builder.gep(root_func.args[0], (c,)) for c in idx]
    for feature, ptr in zip(forest.features, raw_ptrs, strict=True):
        el = builder.load(ptr)
        if feature.is_categorical:
            is_nan = builder.fcmp_ordered("uno", el, cg.get_fdtype_const(0.0, use_fp64))
            el = builder.select(is_nan, cg.iconst(-(2**31)), builder.fptosi(el, cg.INT_CAT))
        args.append(el)
    res_idx = builder.mul(cg.lconst(forest.n_classes), loop_iter_reg)
    results_ptr = [
        builder.gep(out_arr, (builder.add(res_idx, cg.lconst(class_idx)),)) for class_idx in range(forest.n_classes)
    ]
    # The one change: continue the running total (0 + t0 + t1 + ... as LightGBM), not a per-block sum.
    if instr_block_idx > 0:
        results = [builder.load(ptr) for ptr in results_ptr]
    else:
        results = [cg.get_fdtype_const(0.0, use_fp64) for _ in range(forest.n_classes)]
    for func in tree_funcs:
        tree_res = builder.call(func.llvm_function, args)
        results[func.class_id] = builder.fadd(results[func.class_id], tree_res)
    if eval_obj_func:
        results = cg._populate_objective_func_block(
            builder,
            results,
            forest.objective_func,
            forest.objective_func_config,
            forest.raw_score,
            forest.average_output,
            len(forest.trees),
            use_fp64,
        )
    for result, result_ptr in zip(results, results_ptr, strict=True):
        builder.store(result, result_ptr)
    builder.store(builder.add(loop_iter_reg, cg.lconst(1)), loop_iter)
    builder.branch(condition_block)


@contextlib.contextmanager
def _sequential_sums() -> Iterator[None]:
    """lleaves' code generator with `_sequential_instruction_block`, for the duration of one compile."""
    from lleaves.compiler.codegen import codegen

    with _PATCH_LOCK:
        original = codegen._populate_instruction_block
        codegen._populate_instruction_block = _sequential_instruction_block
        try:
            yield
        finally:
            codegen._populate_instruction_block = original


def compile_booster(model_file: str | Path, cache_dir: str | Path, target: str | None = None) -> Path:
    """Compile one LightGBM model file into `cache_dir` (unless already there); the object's path.

    lleaves' own pipeline with two settings changed, measured on the production quantile booster (300 trees
    of 63 leaves): trees are not inlined into the row loop and LLVM optimises at level 1. Inlining made
    LLVM's code generation take 93 s of a 104 s compile; without it the compile takes 12 s and prediction
    is ~15% slower (2.6 against 2.2 ms per 500 rows; LightGBM 4.4 ms).
    """
    import llvmlite.binding as llvm
    import llvmlite.ir
    from lleaves import llvm_binding
    from lleaves.compiler.ast import parse_to_ast
    from lleaves.compiler.codegen import gen_forest

    model_file, cache_dir = Path(model_file), Path(cache_dir)
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = model_file.read_bytes()
    target = target or host_target()
    key = cache_key(data, target)
    obj, text = cache_dir / f"{key}.o", cache_dir / f"{key}.txt"
    if obj.is_file() and text.is_file() and _digest_file(obj).is_file():
        return obj
    partial = f".{os.getpid()}.{threading.get_ident()}.partial"
    text_tmp, obj_tmp = text.with_name(text.name + partial), obj.with_name(obj.name + partial)
    text_tmp.write_text(compilable_text(data.decode()))
    try:
        forest = parse_to_ast(str(text_tmp))
        forest.raw_score = True
        ir_module = llvmlite.ir.Module(name="forest")
        with _sequential_sums():
            gen_forest(forest, ir_module, LLEAVES_BLOCK_SIZE, ENTRY_POINT, True)
        ir_module.triple = llvm.get_process_triple()
        module = llvm.parse_assembly(str(ir_module))
        module.verify()
        builder = llvm.PassManagerBuilder()
        builder.opt_level = OPT_LEVEL
        passes = llvm.ModulePassManager()
        builder.populate(passes)
        passes.run(module)
        llvm_binding._initialize_llvm()
        cpu, _, features = target.partition(":")
        machine = llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(
            cpu=cpu, features=features, reloc="pic", codemodel="large", opt=OPT_LEVEL
        )
        engine = llvm.create_mcjit_compiler(module, machine)
        module.data_layout = str(engine.target_data)
        engine.set_object_cache(notify_func=lambda _, buffer: obj_tmp.write_bytes(buffer))
        engine.finalize_object()
        # The text first, the digests last: an object without both is never taken as compiled.
        os.replace(text_tmp, text)
        os.replace(obj_tmp, obj)
        _record_digests(obj, text)
    finally:
        text_tmp.unlink(missing_ok=True)
        obj_tmp.unlink(missing_ok=True)
    return obj


def booster_files(bundle_dir: str | Path) -> dict[str, Path]:
    """The native booster files of a saved bundle, by booster name."""
    return {path.stem: path for path in sorted((Path(bundle_dir) / "boosters").glob("*.txt"))}


@dataclass(frozen=True)
class CompileSummary:
    """What `ensure_compiled` did: boosters already cached and boosters compiled now."""

    cached: int
    compiled: int
    seconds: float


def ensure_compiled(bundle_dirs: Iterable[str | Path], cache_dir: str | Path, jobs: int = 2) -> CompileSummary:
    """Compile every booster of the bundles that is not in the cache yet, `jobs` at a time, largest first,
    with a progress bar. Each compile runs in its own Python process (`python -m models.compiled`): LLVM's
    optimiser is single-threaded and its context is not thread-safe, and a separate interpreter inherits
    nothing from the caller (a multiprocessing child would re-import the caller's main module)."""
    import subprocess
    import sys
    import time

    from tqdm.auto import tqdm

    started = time.perf_counter()
    target = host_target()
    cache_dir = Path(cache_dir)
    files = [path for folder in bundle_dirs for path in booster_files(folder).values()]
    missing = [path for path in files if not (cache_dir / f"{cache_key(path.read_bytes(), target)}.sha256").is_file()]
    missing.sort(key=lambda path: path.stat().st_size, reverse=True)
    if missing:
        log.info("compiling %d booster(s) for this CPU (one-off; cached in %s)", len(missing), cache_dir)
        queue = list(missing)
        running: list[tuple[Path, subprocess.Popen]] = []
        failures = []
        with tqdm(total=len(missing), desc="compile boosters", unit="booster", disable=None) as bar:
            while queue or running:
                while queue and len(running) < max(1, jobs):
                    path = queue.pop(0)
                    command = [sys.executable, "-m", "models.compiled", str(path), str(cache_dir), target]
                    running.append((path, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
                path, process = running.pop(0)
                _, stderr = process.communicate()
                if process.returncode != 0:
                    failures.append(f"{path}: exit {process.returncode}: {stderr.decode(errors='replace')[-500:]}")
                bar.update()
        if failures:
            raise RuntimeError("compiling boosters failed: " + "; ".join(failures))
    return CompileSummary(len(files) - len(missing), len(missing), time.perf_counter() - started)


class CompiledPredict:
    """Raw scores of one compiled booster for a float64 row-major matrix (one row or a batch).

    Calls the compiled entry point directly (lleaves' `predict` adds input conversion and a thread pool per
    call); it releases the GIL, so a large batch is split across a small persistent pool of threads.
    """

    _pool: concurrent.futures.ThreadPoolExecutor | None = None
    _pool_lock = threading.Lock()

    def __init__(self, model: Any) -> None:
        self.model = model  # keeps the execution engine (and so the code) alive
        self._entry = model._c_entry_func
        self.n_features = model.num_feature()
        self.n_outputs = model.num_model_per_iteration()

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        nrow = len(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix of {self.n_features} features, got shape {matrix.shape}")
        out = np.zeros(nrow * self.n_outputs, dtype=np.float64)
        data_ptr = matrix.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        out_ptr = out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        if nrow < THREADED_ROWS:
            self._entry(data_ptr, out_ptr, 0, nrow)
        else:
            step = -(-nrow // PREDICT_THREADS)
            pool = self._threads()
            parts = [
                pool.submit(self._entry, data_ptr, out_ptr, start, min(start + step, nrow))
                for start in range(0, nrow, step)
            ]
            for part in parts:
                part.result()
        return out.reshape(nrow, -1) if self.n_outputs > 1 else out

    @classmethod
    def _threads(cls) -> concurrent.futures.ThreadPoolExecutor:
        with cls._pool_lock:
            if cls._pool is None:
                cls._pool = concurrent.futures.ThreadPoolExecutor(PREDICT_THREADS, thread_name_prefix="eta311-trees")
            return cls._pool

    def check(self, booster: Any, probe: np.ndarray) -> bool:
        """Bit-for-bit agreement with `booster.predict(raw_score=True)` on `probe`, one by one and at once."""
        expected = np.asarray(booster.predict(probe, raw_score=True), dtype=np.float64).reshape(len(probe), -1)
        together = self(probe).reshape(len(probe), -1)
        singles = np.vstack([self(probe[i : i + 1]).reshape(1, -1) for i in range(min(len(probe), 16))])
        return bool(np.array_equal(together, expected) and np.array_equal(singles, expected[: len(singles)]))


def probe_matrix(booster: Any, rows: int = COMPILED_PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Random rows spread over each feature's training range (numbers) or categories, some missing: a probe
    that sends rows down many different branches of every tree."""
    dump = booster.dump_model(num_iteration=1)  # the header and one tree: cheap
    rng = np.random.default_rng(seed)
    columns = []
    infos = dump["feature_infos"]  # only the features some tree uses
    for name in dump["feature_names"]:
        info = infos.get(name, {})
        values = info.get("values")
        if values:
            column = rng.choice(np.asarray(values, dtype=np.float64), size=rows)
        else:
            low, high = float(info.get("min_value", 0.0)), float(info.get("max_value", 1.0))
            column = rng.uniform(low, high, size=rows) if high > low else np.full(rows, low)
        column[rng.random(rows) < 0.1] = np.nan
        columns.append(column)
    return np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)


def load_compiled(model_file: str | Path, cache_dir: str | Path, target: str | None = None) -> CompiledPredict | None:
    """The cached compiled booster for `model_file`, or None when it was not compiled for this CPU.

    Raises `CompiledRefused` when the cached files fail `verify_cached` (checked before lleaves sees them)."""
    import lleaves

    key = cache_key(Path(model_file).read_bytes(), target or host_target())
    obj, text = Path(cache_dir) / f"{key}.o", Path(cache_dir) / f"{key}.txt"
    if not (obj.is_file() and text.is_file()):
        return None
    verify_cached(obj, text)
    model = lleaves.Model(model_file=str(text))
    model.compile(cache=str(obj), raw_score=True)
    return CompiledPredict(model)


def attach_compiled(bundle: Any, bundle_dir: str | Path, cache_dir: str | Path) -> bool:
    """Make `bundle` predict with its compiled boosters (all of them or none). False, with the reason logged,
    when lleaves is missing, a booster is not in the cache, or compiled and LightGBM scores differ."""
    if not available():
        log.info("lleaves is not installed: predicting with LightGBM")
        return False
    try:
        target = host_target()
        files = booster_files(bundle_dir)
        compiled = {}
        for name, booster in bundle.boosters.items():
            if name not in files:
                log.info("%s: no booster file for %s: predicting with LightGBM", bundle_dir, name)
                return False
            predict = load_compiled(files[name], cache_dir, target)
            if predict is None:
                log.info("%s booster %s is not compiled for this CPU: predicting with LightGBM", bundle.kind, name)
                return False
            if not predict.check(booster, probe_matrix(booster)):
                log.warning("compiled %s booster %s differs from LightGBM: predicting with LightGBM", bundle.kind, name)
                return False
            compiled[name] = predict
    except CompiledRefused as error:  # damaged or foreign: never loaded; LightGBM predicts the same numbers
        log.error("refusing the compiled %s booster %s (%s): predicting with LightGBM", bundle.kind, name, error)
        bundle.cache["compiled_refused"] = str(error)
        return False
    except Exception:  # a broken cache or compiler must never stop predictions: LightGBM is always there
        log.warning("could not load compiled boosters: predicting with LightGBM", exc_info=True)
        return False
    bundle.cache["compiled"] = compiled
    return True


def attach_all(bundles: Iterable[tuple[Any, str | Path]], cache_dir: str | Path) -> bool:
    """`attach_compiled` for (bundle, bundle folder) pairs that predict together: all of them or none, so
    one request never mixes engines (the numbers would be the same; the timings would not be)."""
    pairs = list(bundles)
    if all([attach_compiled(bundle, folder, cache_dir) for bundle, folder in pairs]):
        return True
    for bundle, _ in pairs:
        bundle.cache.pop("compiled", None)
    return False


def attach_loaded(models: Iterable[Any], cache_dir: str | Path) -> bool:
    """`attach_all` for models loaded from the registry (`models.registry.LoadedModel`: `.bundle`, `.path`),
    from the cache only (never compiles)."""
    from models.files import bundle_folder

    return attach_all([(model.bundle, bundle_folder(model.path)) for model in models], cache_dir)


if __name__ == "__main__":  # `python -m models.compiled MODEL_FILE CACHE_DIR TARGET`: one compile (ensure_compiled)
    import sys

    compile_booster(sys.argv[1], sys.argv[2], sys.argv[3])
