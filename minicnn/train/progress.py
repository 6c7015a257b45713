"""A progress bar: tqdm on a terminal when it is installed, else a plain line now and then.

The plain fallback (no tqdm, or output to a file/pipe/CI log) prints at most one
line every ``interval`` seconds, so short loops print nothing and long ones leave
a readable trace instead of carriage-return noise.
"""
import sys
import time


class _Plain:
    def __init__(self, iterable, total, desc, interval, stream):
        self.iterable, self.total, self.desc = iterable, total, desc
        self.interval, self.stream, self.info = interval, stream, {}

    def __iter__(self):
        start = last = time.perf_counter()
        for i, item in enumerate(self.iterable, 1):
            yield item
            now = time.perf_counter()
            if now - last >= self.interval and (self.total is None or i < self.total):
                last = now
                info = "".join(f"  {k} {v}" for k, v in self.info.items())
                of = f"/{self.total}" if self.total else ""
                print(f"{self.desc} {i}{of}  {now - start:.0f}s{info}", file=self.stream, flush=True)

    def set_postfix(self, **info):
        self.info = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in info.items()}

    def close(self):
        pass


class _Silent(_Plain):
    def __iter__(self):
        return iter(self.iterable)


def progress(iterable, total=None, desc="", enabled=True, interval=10.0, stream=None):
    """Wrap ``iterable``; the result has ``set_postfix(**info)`` and ``close()`` like tqdm's bar."""
    stream = stream or sys.stderr
    if not enabled:
        return _Silent(iterable, total, desc, interval, stream)
    if getattr(stream, "isatty", lambda: False)():
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return tqdm(iterable, total=total, desc=desc, leave=False, file=stream, dynamic_ncols=True)
    return _Plain(iterable, total, desc, interval, stream)
