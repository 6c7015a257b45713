"""DataLoader determinism and threads, transforms, generated datasets, and file readers on files
written here in each format."""
import gzip
import pickle
import struct
import sys
import threading
import zlib

import numpy as np
import pytest

import minicnn as mc
from minicnn import data as D
from minicnn.data import transforms as T


class Noisy(D.Dataset):
    """Sample i = (i plus a random offset drawn by the transform machinery, i)."""

    def __len__(self):
        return 23

    def __getitem__(self, i):
        return np.array([i + T.rng().random()], np.float32), i


def epochs(loader, n=2):
    return [[(x.numpy().copy(), y.numpy().copy()) for x, y in loader] for _ in range(n)]


def assert_same(a, b):
    assert len(a) == len(b)
    for ea, eb in zip(a, b):
        assert len(ea) == len(eb)
        for (xa, ya), (xb, yb) in zip(ea, eb):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


# -- DataLoader ---------------------------------------------------------------------------------

def test_batches_cover_the_dataset_once():
    x = np.arange(10, dtype=np.float32)[:, None]
    loader = D.DataLoader(D.TensorDataset(x, np.arange(10)), batch_size=4, shuffle=True, generator=0)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[0]) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate([b[1].numpy() for b in batches]).tolist()) == list(range(10))
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    loader = D.DataLoader(D.TensorDataset(x, np.arange(10)), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [b[1].numpy().tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_shuffling_is_a_function_of_the_seed():
    a = epochs(D.DataLoader(Noisy(), 5, shuffle=True, generator=7))
    b = epochs(D.DataLoader(Noisy(), 5, shuffle=True, generator=7))
    c = epochs(D.DataLoader(Noisy(), 5, shuffle=True, generator=8))
    assert_same(a, b)
    assert not np.array_equal(a[0][0][1], c[0][0][1])
    assert not np.array_equal(a[0][0][1], a[1][0][1])  # a new order every epoch


def test_global_generator_drives_a_loader_without_its_own():
    mc.manual_seed(3)
    a = epochs(D.DataLoader(Noisy(), 4, shuffle=True))
    mc.manual_seed(3)
    b = epochs(D.DataLoader(Noisy(), 4, shuffle=True))
    assert_same(a, b)


def test_prefetch_thread_gives_the_same_batches():
    assert_same(epochs(D.DataLoader(Noisy(), 4, shuffle=True, generator=1)),
                epochs(D.DataLoader(Noisy(), 4, shuffle=True, generator=1, prefetch=3)))


def test_state_dict_restores_the_next_epoch():
    loader = D.DataLoader(Noisy(), 4, shuffle=True, generator=5)
    epochs(loader, 1)
    state = loader.state_dict()
    want = epochs(loader, 1)
    other = D.DataLoader(Noisy(), 4, shuffle=True, generator=99)
    other.load_state_dict(state)
    assert_same(epochs(other, 1), want)
    with pytest.raises(ValueError, match="own generator"):
        D.DataLoader(Noisy(), 4).load_state_dict(state)


def test_prefetch_thread_stops_on_break_and_on_errors():
    before = threading.active_count()
    it = iter(D.DataLoader(Noisy(), 1, prefetch=2))
    next(it)
    it.close()
    assert not it._thread.is_alive()

    class Broken(Noisy):
        def __getitem__(self, i):
            if i == 9:
                raise KeyError("sample 9 is broken")
            return super().__getitem__(i)

    with pytest.raises(KeyError, match="sample 9"):
        for _ in D.DataLoader(Broken(), 2, prefetch=2):
            pass
    for _ in D.DataLoader(Noisy(), 2, prefetch=1):
        break
    assert threading.active_count() == before  # dropping the iterator stopped its thread


def test_collate_images_labels_masks_and_dicts():
    img = np.zeros((3, 4, 5), np.float32)
    x, y = D.default_collate([(img, 1), (img, 2)])
    assert x.shape == (2, 3, 4, 5) and y.numpy().tolist() == [1, 2] and y.dtype == np.int64
    x, m = D.default_collate([(img, np.ones((4, 5), np.int64))] * 3)
    assert m.shape == (3, 4, 5) and m.dtype == np.int64
    d = D.default_collate([{"a": 1.5, "b": "x"}, {"a": 2.5, "b": "y"}])
    assert d["a"].dtype == np.float32 and d["b"] == ["x", "y"]
    with pytest.raises(TypeError, match="don't know how to batch"):
        D.default_collate([object()])


def test_random_split_and_subset():
    parts = D.random_split(D.TensorDataset(np.arange(10)), [0.7, 0.3], generator=0)
    assert [len(p) for p in parts] == [7, 3]
    seen = sorted(int(p[i][0]) for p in parts for i in range(len(p)))
    assert seen == list(range(10))
    with pytest.raises(ValueError, match="do not add up"):
        D.random_split(D.TensorDataset(np.arange(10)), [3, 3])


# -- transforms -----------------------------------------------------------------------------

def coords_image(h, w):
    """Channel 0 = row*w + col + 1, so a crop/flip can be read back from the pixels."""
    return (np.arange(h * w, dtype=np.float32).reshape(1, h, w) + 1)


def test_random_crop_with_padding_moves_the_mask_with_the_image():
    img = coords_image(6, 7)
    mask = img[0].astype(np.int64)
    with T.using_rng(np.random.default_rng(0)):
        for _ in range(20):
            x, m = T.RandomCrop(6, padding=2)(img, mask)
            assert x.shape == (1, 6, 6) and m.shape == (6, 6)
            np.testing.assert_array_equal(x[0].astype(np.int64), m)  # same window, zero padding in both
            inside = x[0][x[0] > 0]
            assert inside.size and np.all(np.diff(inside.reshape(-1)) != 0)
    x = T.RandomCrop((3, 4))(img)
    assert x.shape == (1, 3, 4)
    with pytest.raises(ValueError, match="larger than the padded image"):
        T.RandomCrop(9)(img)


def test_crop_windows_cover_every_offset():
    img = coords_image(4, 4)
    firsts = set()
    with T.using_rng(np.random.default_rng(1)):
        for _ in range(200):
            firsts.add(float(T.RandomCrop(4, padding=1)(img)[0, 1, 1]))
    # the pixel at (1, 1) of the crop is original pixel (i, j) with i, j in {0, 1, 2}
    assert firsts == {float(r * 4 + c + 1) for r in range(3) for c in range(3)}


def test_flip_and_normalize():
    img = coords_image(2, 3)
    mask = np.array([[0, 1, 2], [3, 4, 5]])
    x, m = T.RandomHorizontalFlip(p=1.0)(img, mask)
    np.testing.assert_array_equal(x[0], img[0][:, ::-1])
    np.testing.assert_array_equal(m, mask[:, ::-1])
    assert T.RandomHorizontalFlip(p=0.0)(img) is img
    x, m = T.RandomVerticalFlip(p=1.0)(img, mask)
    np.testing.assert_array_equal(m, mask[::-1])
    img3 = np.ones((3, 2, 2), np.float32) * np.array([1, 2, 3], np.float32)[:, None, None]
    y = T.Normalize([1, 1, 1], [1, 2, 4])(img3)
    np.testing.assert_allclose(y[:, 0, 0], [0, 0.5, 0.5])
    assert y.dtype == np.float32
    out = T.Compose([T.Normalize([0.5], [0.5]), T.RandomHorizontalFlip(1.0)])(img, mask)
    np.testing.assert_array_equal(out[1], mask[:, ::-1])
    with pytest.raises(ValueError, match="does not match image"):
        T.RandomHorizontalFlip()(img, mask[:1])


def test_augmentation_in_a_loader_repeats_with_the_seed():
    ds = D.ShapesClassification(40, image_size=16, seed=0,
                                transform=T.Compose([T.RandomCrop(16, padding=3), T.RandomHorizontalFlip()]))
    assert_same(epochs(D.DataLoader(ds, 8, shuffle=True, generator=2)),
                epochs(D.DataLoader(ds, 8, shuffle=True, generator=2, prefetch=2)))


# -- generated datasets -------------------------------------------------------------------------

def test_shapes_classification_is_deterministic_and_labelled():
    a, b = D.ShapesClassification(50, image_size=24, seed=4), D.ShapesClassification(50, image_size=24, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, D.ShapesClassification(50, image_size=24, seed=5).images)
    x, y = a[0]
    assert x.shape == (3, 24, 24) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert set(a.targets.tolist()) == set(range(5))
    assert a.classes == ["circle", "square", "triangle", "cross", "diamond"]


def test_shape_masks_have_the_right_areas():
    yy, xx = np.mgrid[-250:251, -250:251].astype(np.float64)
    r = 200.0
    area = {k: D.shapes.shape_mask(k, yy, xx, r).sum() for k in D.shapes.SHAPES}
    assert area["circle"] == pytest.approx(np.pi * r * r, rel=0.01)
    assert area["square"] == pytest.approx((1.6 * r) ** 2, rel=0.02)
    assert area["diamond"] == pytest.approx(2 * r * r, rel=0.02)
    assert area["triangle"] == pytest.approx(0.75 * np.sqrt(3) * r * r, rel=0.02)
    assert area["cross"] == pytest.approx(2 * (2 * r) * (2 * r / 3) - (2 * r / 3) ** 2, rel=0.03)


def test_shapes_segmentation_masks_match_the_images():
    ds = D.ShapesSegmentation(20, image_size=32, seed=1)
    x, m = ds[3]
    assert x.shape == (3, 32, 32) and m.shape == (32, 32) and m.dtype == np.int64
    assert ds.classes == ["background", "circle", "square", "triangle"]
    assert set(np.unique(ds.targets)) == {0, 1, 2, 3}
    for i in range(5):
        x, m = ds[i]
        bg = x[:, m == 0].mean(1)
        fg = x[:, m > 0]
        assert np.abs(fg - bg[:, None]).max(0).mean() > 0.2  # shapes stand out from the background
    np.testing.assert_array_equal(ds.targets, D.ShapesSegmentation(20, image_size=32, seed=1).targets)


def test_digits():
    pytest.importorskip("sklearn")
    train, test = D.Digits(train=True), D.Digits(train=False)
    assert len(train) + len(test) == 1797 and len(test) == 360
    x, y = train[0]
    assert x.shape == (1, 8, 8) and x.dtype == np.float32 and x.max() <= 1 and 0 <= y <= 9
    flat = {tuple(train.images[i].ravel()) for i in range(len(train))}
    assert sum(tuple(test.images[i].ravel()) in flat for i in range(len(test))) < 5  # duplicates only


def test_digits_without_scikit_learn_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        D.Digits()


# -- readers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_mnist_from_idx_files(tmp_path, suffix):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, arr in [("t10k-images-idx3-ubyte", imgs), ("t10k-labels-idx1-ubyte", labels)]:
        head = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
        blob = head + arr.tobytes()
        (raw / (name + suffix)).write_bytes(gzip.compress(blob) if suffix else blob)
    ds = D.MNIST(tmp_path, train=False)
    x, y = ds[3]
    assert len(ds) == 7 and x.shape == (1, 28, 28) and y == labels[3]
    np.testing.assert_allclose(x[0], imgs[3] / 255.0, rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        D.MNIST(tmp_path, train=True)


def test_idx_round_trip_and_errors(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    D.write_idx(tmp_path / "a.idx.gz", a)
    b = D.read_idx(tmp_path / "a.idx.gz")
    np.testing.assert_array_equal(a, b)
    assert b.dtype == np.int32
    (tmp_path / "bad").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")
    with pytest.raises(ValueError, match="shape \\(5,\\)"):
        D.read_idx(tmp_path / "bad")


def test_cifar10_from_python_batches(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    want = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, 4)]
        want[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels}, f, protocol=2)
    train, test = D.CIFAR10(tmp_path, train=True), D.CIFAR10(tmp_path, train=False)
    assert len(train) == 20 and len(test) == 4 and test.classes[0] == "airplane"
    x, y = train[5]  # batch 2, image 1
    data, labels = want["data_batch_2"]
    assert y == labels[1]
    np.testing.assert_allclose(x, data[1].reshape(3, 32, 32) / 255.0, rtol=1e-6)
    assert x[0, 0, 1] == pytest.approx(data[1][1] / 255)  # red plane first, row-major


def _png(path, ctype, depth, rows, filters, palette=None):
    """An independent PNG encoder: ``rows`` (H, stride) bytes, one filter type per row."""
    h, stride = rows.shape
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    bpp = max(1, channels * depth // 8)
    out, prev = bytearray(), np.zeros(stride, np.int64)
    for y in range(h):
        cur, f = rows[y].astype(np.int64), filters[y % len(filters)]
        a = np.concatenate([np.zeros(bpp, np.int64), cur[:-bpp]])
        c = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        if f == 0:
            pred = 0
        elif f == 1:
            pred = a
        elif f == 2:
            pred = prev
        elif f == 3:
            pred = (a + prev) // 2
        else:
            p = a + prev - c
            pa, pb, pc = np.abs(p - a), np.abs(p - prev), np.abs(p - c)
            pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, prev, c))
        out += bytes([f]) + ((cur - pred) % 256).astype(np.uint8).tobytes()
        prev = cur

    def chunk(t, body):
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))

    w = stride * 8 // (channels * depth)
    blob = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    if palette is not None:
        blob += chunk(b"PLTE", palette.tobytes())
    comp = zlib.compress(bytes(out))
    blob += chunk(b"IDAT", comp[:10]) + chunk(b"IDAT", comp[10:]) + chunk(b"IEND", b"")
    path.write_bytes(blob)


@pytest.mark.parametrize("ctype,channels", [(0, 1), (2, 3), (4, 2), (6, 4)])
def test_png_reader_undoes_every_filter(tmp_path, ctype, channels):
    rng = np.random.default_rng(ctype)
    img = rng.integers(0, 256, (9, 7, channels), dtype=np.uint8)
    img[3:6] = img[3:6] // 16  # smooth rows, where prediction matters
    _png(tmp_path / "f.png", ctype, 8, img.reshape(9, -1), filters=[0, 1, 2, 3, 4, 4, 3, 2, 1])
    got = D.read_png(tmp_path / "f.png")
    np.testing.assert_array_equal(got, img[:, :, 0] if channels == 1 else img)


def test_png_low_bit_depth_palette_and_16_bit(tmp_path):
    idx = np.random.default_rng(0).integers(0, 4, (5, 8)).astype(np.uint8)
    packed = (idx[:, 0::4] << 6) | (idx[:, 1::4] << 4) | (idx[:, 2::4] << 2) | idx[:, 3::4]
    pal = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    _png(tmp_path / "p.png", 3, 2, packed, filters=[0, 2], palette=pal)
    np.testing.assert_array_equal(D.read_png(tmp_path / "p.png"), idx)
    np.testing.assert_array_equal(D.read_png(tmp_path / "p.png", expand_palette=True), pal[idx])
    deep = np.random.default_rng(1).integers(0, 65536, (4, 3)).astype(">u2")
    _png(tmp_path / "d.png", 0, 16, deep.view(np.uint8).reshape(4, 6), filters=[1, 4])
    got = D.read_png(tmp_path / "d.png")
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, deep.astype(np.uint16))


def test_png_writer_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    for shape in [(6, 5), (6, 5, 3), (6, 5, 4)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        D.write_png(tmp_path / "w.png", img)
        np.testing.assert_array_equal(D.read_png(tmp_path / "w.png"), img)
    mask = rng.integers(0, 3, (6, 5), dtype=np.uint8)
    D.write_png(tmp_path / "m.png", mask, palette=[[0, 0, 0], [9, 9, 9], [200, 0, 0]])
    np.testing.assert_array_equal(D.read_png(tmp_path / "m.png"), mask)
    with pytest.raises(TypeError, match="uint8"):
        D.write_png(tmp_path / "x.png", np.zeros((2, 2)))
    (tmp_path / "no.png").write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match="not a PNG"):
        D.read_png(tmp_path / "no.png")
    blob = (tmp_path / "w.png").read_bytes()
    (tmp_path / "i.png").write_bytes(blob[:28] + b"\x01" + blob[29:])  # set the interlace flag
    with pytest.raises(ValueError, match="interlaced"):
        D.read_png(tmp_path / "i.png")


def test_segmentation_folder(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    imgs, masks = {}, {}
    for name, shape in [("a.png", (8, 6, 3)), ("b.png", (8, 6))]:
        imgs[name] = rng.integers(0, 256, shape, dtype=np.uint8)
        masks[name] = rng.integers(0, 4, (8, 6), dtype=np.uint8)
        D.write_png(tmp_path / "images" / name, imgs[name])
        D.write_png(tmp_path / "masks" / name, masks[name], palette=np.zeros((4, 3), np.uint8))
    flip = T.RandomHorizontalFlip(p=1.0)
    ds = D.SegmentationFolder(tmp_path, transform=flip)
    assert len(ds) == 2
    x, m = ds[0]
    assert x.shape == (3, 8, 6) and x.dtype == np.float32 and m.dtype == np.int64
    np.testing.assert_allclose(x, imgs["a.png"].transpose(2, 0, 1)[:, :, ::-1] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(m, masks["a.png"][:, ::-1])
    assert D.SegmentationFolder(tmp_path)[1][0].shape == (1, 8, 6)
    (tmp_path / "images" / "c.png").write_bytes((tmp_path / "images" / "a.png").read_bytes())
    with pytest.raises(FileNotFoundError, match="no mask .* for c.png"):
        D.SegmentationFolder(tmp_path)


def test_collate_names_mismatched_shapes():
    with pytest.raises(ValueError, match=r"different shapes \[\(1, 2\), \(1, 3\)\]"):
        D.default_collate([(np.zeros((1, 2)), 0), (np.zeros((1, 3)), 1)])
