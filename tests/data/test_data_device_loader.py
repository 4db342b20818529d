"""The on-device loader: each sample once per epoch per rank, disjoint ranks, augmentation that is
torchvision's, and a resumed loader that continues with the very next batch."""

import itertools

import pytest
import torch
from torch.utils.data import DistributedSampler

from template.data import augment
from template.data.device_loader import DeviceLoader

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)
N = 103  # not a multiple of the batch size nor of the world size


def dataset(n: int = N):
    """Images, and labels that are the sample ids, so every batch says which samples it holds."""
    images = torch.randint(
        0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    return images, torch.arange(n)


def loader(train=True, rank=0, world_size=1, batch_size=16, seed=3, n=N):
    return DeviceLoader(
        *dataset(n), MEAN, STD, batch_size, train=train, seed=seed, rank=rank, world_size=world_size
    )


def epoch_ids(batches) -> list[int]:
    return [i for _, labels in batches for i in labels.tolist()]


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_each_rank_sees_a_disjoint_equal_share_once_per_epoch(world_size):
    loaders = [loader(rank=rank, world_size=world_size) for rank in range(world_size)]
    for _ in range(2):  # two epochs
        shares = [epoch_ids(list(each)) for each in loaders]
        for share in shares:
            assert len(share) == len(set(share)) == N // world_size  # once each, remainder dropped
        union = set().union(*map(set, shares))
        assert len(union) == N // world_size * world_size  # disjoint
    assert all(len(each) == -(-(N // world_size) // 16) for each in loaders)


@pytest.mark.parametrize("train", [True, False])
def test_shards_are_distributed_samplers_for_the_same_seed_and_epoch(train):
    """Same permutation (a generator seeded with seed + epoch), same slicing, same remainder rule."""
    for rank in range(3):
        ours = loader(train=train, rank=rank, world_size=3)
        for epoch in range(2):
            sampler = DistributedSampler(range(N), 3, rank, shuffle=train, seed=3, drop_last=train)
            sampler.set_epoch(epoch)
            assert epoch_ids(ours) == list(sampler)


def test_order_is_a_function_of_seed_and_epoch():
    first, again, other_seed = loader(), loader(), loader(seed=4)
    epoch0, epoch1 = epoch_ids(first), epoch_ids(first)
    assert epoch0 != epoch1 and sorted(epoch0) == sorted(epoch1) == list(range(N))
    assert epoch_ids(again) == epoch0 and epoch_ids(again) == epoch1
    assert epoch_ids(other_seed) != epoch0


def test_evaluation_keeps_order_and_pads_ranks_to_cover_every_sample():
    assert epoch_ids(loader(train=False)) == list(range(N))
    shares = [epoch_ids(loader(train=False, rank=rank, world_size=4)) for rank in range(4)]
    assert {len(share) for share in shares} == {26} and set().union(*map(set, shares)) == set(range(N))
    tiny = [epoch_ids(loader(train=False, rank=rank, world_size=4, n=2)) for rank in range(4)]
    assert tiny == [[0], [1], [0], [1]]  # more ranks than samples: repeated, as DistributedSampler does
    images, _ = dataset()
    batch, _ = next(iter(loader(train=False)))
    assert torch.equal(batch, augment.normalize(images[:16], MEAN, STD))  # no augmentation


def test_training_batches_are_crops_and_flips_of_their_samples():
    images, _ = dataset()
    decisions = list(itertools.product(range(9), range(9), (False, True)))
    offsets = torch.tensor([[top, left] for top, left, _ in decisions])
    flips = torch.tensor([flip for _, _, flip in decisions])
    batch, ids = next(iter(loader()))
    assert batch.dtype == torch.float32 and batch.shape == (16, 3, 32, 32)
    for image, i in zip(batch[:4], ids[:4], strict=True):
        candidates = augment.normalize(
            augment.augment(images[i].expand(len(decisions), -1, -1, -1), offsets, flips), MEAN, STD
        )
        assert any(torch.equal(image, candidate) for candidate in candidates)


def test_resumed_loader_continues_with_the_next_batch():
    unbroken = loader()
    expected = [list(unbroken) for _ in range(3)]  # three epochs
    interrupted = loader()
    list(interrupted)  # epoch 0
    partial = []
    for batch in interrupted:  # epoch 1, stopped after 3 batches, as a checkpoint mid-epoch would
        partial.append(batch)
        if len(partial) == 3:
            break
    state = interrupted.state_dict()
    assert state == {"epoch": 1, "batches_done": 3}
    resumed = loader()
    resumed.load_state_dict(state)
    rest, following = list(resumed), list(resumed)
    for got, want in zip(partial + rest + following, expected[1] + expected[2], strict=True):
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_state_at_an_epoch_end_resumes_with_the_next_epoch():
    first = loader()
    list(first)
    resumed = loader()
    resumed.load_state_dict(first.state_dict())
    assert epoch_ids(resumed) == epoch_ids(first)  # both now draw epoch 1


def test_rank_and_world_size_default_to_a_single_process():
    assert (loader().rank, loader().world_size) == (0, 1)
    default = DeviceLoader(*dataset(), MEAN, STD, 16, train=True)
    assert (default.rank, default.world_size) == (0, 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_batches_are_made_on_the_device():
    images, labels = dataset()
    on_gpu = DeviceLoader(images.cuda(), labels.cuda(), MEAN, STD, 16, train=True, seed=3, device="cuda")
    on_cpu = loader()
    for (gpu_batch, gpu_ids), (cpu_batch, cpu_ids) in zip(on_gpu, on_cpu, strict=True):
        assert gpu_batch.device.type == "cuda" and torch.equal(gpu_ids.cpu(), cpu_ids)
        torch.testing.assert_close(gpu_batch.cpu(), cpu_batch, rtol=0, atol=1e-6)
