"""torch.compile on the DARTS supernet: how long compiling takes, and what it buys per step.

One forward + backward of the search network (8 cells, C = 16, DARTS' space, 3x32x32 inputs, channels_last) compiled
with `torch.compile` (inductor, default mode): the first call's wall time (the compile) and the median step time after
it, against the same step run eagerly, in one process. `--per-edge` compiles the per-edge supernet instead of the
batched one (`Supernet(batched=False)`); the compile is stopped after `--timeout` seconds.

    python benchmarks/darts_compile.py [--device cpu|cuda] [--batch-size 32] [--layers 8] [--steps 3] [--timeout 900] [--per-edge]
"""
import argparse, signal, statistics, time
import torch
import torch.nn.functional as F

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--batch-size', type=int, default=32); ap.add_argument('--layers', type=int, default=8)
    ap.add_argument('--C', type=int, default=16); ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--timeout', type=int, default=900, help='seconds the compile may take before it is stopped')
    ap.add_argument('--per-edge', action='store_true', help='the per-edge supernet instead of the batched one')
    a = ap.parse_args()
    from lt_workbook.darts import Supernet, DARTS_PRIMITIVES
    dev, sync = torch.device(a.device), (torch.cuda.synchronize if a.device == 'cuda' else (lambda: None))
    torch.manual_seed(0)
    net = Supernet(10, primitives=DARTS_PRIMITIVES, C=a.C, layers=a.layers, batched=not a.per_edge).to(dev).to(memory_format=torch.channels_last)
    x = torch.randn(a.batch_size, 3, 32, 32, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (a.batch_size,), device=dev)
    def step(model):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        sync()
    def timed(model, n):
        out = []
        for _ in range(n):
            t = time.perf_counter(); step(model); out.append(time.perf_counter() - t)
        return statistics.median(out)
    kind = 'per-edge' if a.per_edge else 'batched'
    print(f"torch.compile of the {kind} supernet ({a.layers} cells, C={a.C}, batch {a.batch_size}, {dev}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads)", flush=True)
    step(net); eager = timed(net, a.steps)
    print(f"eager: {eager:.3f} s per forward + backward", flush=True)
    compiled = torch.compile(net)
    expired = []
    def stop(*_):
        expired.append(True); raise TimeoutError(f"compile still running after {a.timeout} s")
    signal.signal(signal.SIGALRM, stop)
    signal.alarm(a.timeout)
    t = time.perf_counter()
    try: step(compiled)
    except Exception:                      # inductor wraps the TimeoutError in errors of its own
        if not expired: raise
        print(f"compiled: the compile was still running after {a.timeout} s (stopped): not acceptable"); return
    signal.alarm(0)
    first = time.perf_counter() - t
    fast = timed(compiled, a.steps)
    print(f"compiled: first call (the compile) {first:.1f} s; then {fast:.3f} s per forward + backward "
          f"({eager / fast:.2f}x eager); the compile pays for itself after {first / max(eager - fast, 1e-9):.0f} steps"
          if fast < eager else f"compiled: first call (the compile) {first:.1f} s; then {fast:.3f} s per forward + backward "
          f"({eager / fast:.2f}x eager: slower, never pays for itself)")

if __name__ == '__main__': main()
