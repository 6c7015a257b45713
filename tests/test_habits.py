"""PyTorch's habits that classic scripts rely on (issue 15, the parts done so far)."""
import numpy as np
import pytest

import minicnn as torch  # as the scripts write it
from minicnn.utils.data import DataLoader, TensorDataset, random_split


def test_device_and_cuda_availability_read_as_in_pytorch():
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    assert device.type in ("cpu", "cuda") and isinstance(device, str)
    cuda = torch.device("cuda", 1)
    assert (cuda.type, cuda.index, str(cuda), repr(cuda)) == ("cuda", 1, "cuda:1", "device(type='cuda', index=1)")
    assert torch.zeros(2).to(torch.device("cpu")).device == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        torch.device("tpu")


def test_generator_seeds_random_split_and_the_loader():
    data = TensorDataset(torch.tensor(np.arange(10.0)), torch.tensor(np.arange(10)))
    first = random_split(data, [7, 3], generator=torch.Generator().manual_seed(42))
    again = random_split(data, [7, 3], generator=torch.Generator().manual_seed(42))
    assert [list(s.indices) for s in first] == [list(s.indices) for s in again]
    assert sorted(list(first[0].indices) + list(first[1].indices)) == list(range(10))
    g = torch.Generator().manual_seed(3)
    assert g.initial_seed() == 3
    order = [b[1].numpy().tolist() for b in DataLoader(data, 5, shuffle=True, generator=torch.Generator().manual_seed(1))]
    assert order == [b[1].numpy().tolist()
                     for b in DataLoader(data, 5, shuffle=True, generator=torch.Generator().manual_seed(1))]


def test_data_loader_accepts_workers_and_pinned_memory():
    data = TensorDataset(torch.tensor(np.arange(6.0)))
    loader = DataLoader(data, batch_size=2, num_workers=2, pin_memory=True, persistent_workers=False)
    assert [b[0].numpy().tolist() for b in loader] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    with pytest.raises(TypeError, match="unexpected argument.*bogus"):
        DataLoader(data, bogus=1)
    with pytest.raises(ValueError, match="num_workers must be a non-negative integer"):
        DataLoader(data, num_workers=-1)


def test_an_integer_tensor_indexes_a_list():
    classes = ("plane", "car", "bird")
    labels = torch.tensor(np.array([2, 0]))
    assert classes[labels[0]] == "bird" and classes[labels[1]] == "plane"
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        classes[torch.tensor(np.array([1.0]))[0]]
