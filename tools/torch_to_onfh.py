#!/usr/bin/python3
"""torch_to_onfh.py: a torchvision state_dict (.pth) -> an onfh checkpoint (HDF5).

Usage: /usr/bin/python3 tools/torch_to_onfh.py MODEL IN.pth OUT.h5 [--image-size N]

MODEL is the architecture id (= torchvision builder name, e.g. mobilenet_v3_large). IN.pth is
what torch.save(model.state_dict(), ...) writes, or a checkpoint dict holding one under
"state_dict" or "model". The output holds the weights only (no optimizer state, step 0); load
it with onfh's NN_CKPT_NEW_HEAD option (train.init_checkpoint) to start a 2-class model from
1000-class ImageNet weights: every tensor of matching shape is taken, the head is left to
onfh's initialisation. Layout: data-schema/checkpoint.md. Needs python3-torch and python3-h5py.
"""

import argparse

import h5py
import numpy as np
import torch


def write_checkpoint(path, model, state_dict, image_size, producer):
    sd = {k: v.detach().cpu() for k, v in state_dict.items()}
    classes = 0
    for k, v in sd.items():
        if v.dim() == 2:
            classes = int(v.shape[0])  # the last linear layer in state_dict order
    first = next(v for v in sd.values() if v.dim() == 4)
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    f = h5py.File(h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl))
    for name, value in dict(schema="onfh-checkpoint-1", model=model, producer=producer,
                            config_sha256="").items():
        f.attrs.create(name, value,
                       dtype=h5py.string_dtype("ascii", len(value) + 1))
    for name, value in dict(classes=classes, in_channels=int(first.shape[1]),
                            image_size=image_size, step=0, epoch=0, data_position=0,
                            finished=0, best_epoch=-1, stale_epochs=0).items():
        f.attrs.create(name, value, dtype=np.int64)
    f.attrs.create("seed", 0, dtype=np.uint64)
    f.attrs.create("best_val_loss", float("inf"), dtype=np.float64)
    g = f.create_group("state_dict", track_order=False)
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            g.create_dataset(k, data=np.int64(v.item()), dtype=np.int64, track_times=False)
        else:
            g.create_dataset(k, data=v.numpy().astype(np.float32), track_times=False)
    f.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--image-size", type=int, default=224)
    a = ap.parse_args()
    obj = torch.load(a.input, map_location="cpu")
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and "model" in obj:
        obj = obj["model"]
    write_checkpoint(a.output, a.model, obj, a.image_size, "tools/torch_to_onfh.py")
    print(f"wrote {a.output}: {len(obj)} tensors")


if __name__ == "__main__":
    main()
