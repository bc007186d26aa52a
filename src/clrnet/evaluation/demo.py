"""The demo: a photo shipped with scikit-image is protected, cropped to 60 %
of its area and JPEG-80 compressed, then inspected; a side-by-side figure of
original, protected, received, mask and recovered is written.

Protection v2 carries as much of the photo as its working frame holds: the
astronaut as shipped (512 x 512) carries a 40-byte thumbnail, which brings
the cut-away part back as coloured blur. So v2's demo enlarges her to 2048 x
2048 (Lanczos), the working frame of a phone photo (638 bytes), where the
flag, the rocket and the hair come back recognisably; ``size=512`` shows
the photo as shipped. An enlarged photo is smoother than a real one of that
size (the 8-MP path of ``evaluation.real_path`` measures real ones)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from clrnet.api import get_model, inspect, protect
from clrnet.attacks import real
from clrnet.core.geometry import box_iou, box_mask, resize
from clrnet.core.image import pil_to_tensor
from clrnet.core.metrics import psnr
from clrnet.evaluation.baselines import inpaint_biharmonic, inpaint_telea
from clrnet.files.imageio import save_atomic


def sample_photo() -> Image.Image:
    """scikit-image's 'astronaut' (512x512, public domain)."""
    from skimage import data

    return Image.fromarray(data.astronaut()).convert("RGB")




def run_demo(out_dir: str | Path = "demo-out", model: str | None = None,
             box: tuple[float, float, float, float] = (0.1, 0.15, 0.85, 0.95), size: int | None = None) -> dict:
    """Protect -> crop (60 % of the area) + JPEG 80 -> inspect; returns the numbers.
    ``size``: the photo's side (None: the model's ``demo_size``, else the photo's own, 512)."""
    out = Path(out_dir)
    m = get_model(model)
    original = sample_photo()
    size = size or m.demo_size or original.width
    if size != original.width:
        original = original.resize((size, size), Image.Resampling.LANCZOS)
    protected = protect(original, m)
    received = real.jpeg(real.crop(protected, box), 80)
    found = inspect(received, m, original_size=original.size)

    o, p = pil_to_tensor(original), pil_to_tensor(protected)
    w, h = original.size
    true_mask = box_mask(box, h, w)
    cut = 1 - true_mask
    rec = pil_to_tensor(found.recovered)
    rec_native = pil_to_tensor(found.recovered_native)  # the model's own frame: 128² (v1), working frame (v2)
    _, nh, nw = rec_native.shape
    o_native = resize(o[None], nh, nw)[0]
    cut_native = 1 - box_mask(box, nh, nw)
    numbers = {
        "size": size,
        "protected_psnr_db": psnr(p, o),
        "cropped": found.cropped,
        "score": found.score,
        "true_box": box,
        "predicted_box": found.box,
        "box_iou": box_iou(found.box, box),
        "recovered_psnr_cut_db": psnr(rec, o, cut),
        "recovered_native_psnr_cut_db": psnr(rec_native, o_native, cut_native),
        "zero_fill_psnr_cut_db": psnr(o * true_mask, o, cut),
        "inpainting_psnr_cut_db": psnr(inpaint_telea(o * true_mask, true_mask), o, cut),
    }
    if max(nh, nw) <= 256:  # an exact biharmonic solve is quick only on small frames
        numbers["inpainting_native_psnr_cut_db"] = psnr(
            inpaint_biharmonic(o_native * (1 - cut_native), 1 - cut_native), o_native, cut_native)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"original ({w} x {h})", original), ("protected", protected),
              ("received (crop 60 % + JPEG 80)", received),
              (f"predicted mask (IoU {numbers['box_iou']:.2f})", found.mask),
              (f"recovered ({numbers['recovered_psnr_cut_db']:.1f} dB cut-away)", found.overlay())]
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.6))
    for ax, (title, im) in zip(axes, panels):
        ax.imshow(np.asarray(im), cmap="gray" if im.mode == "L" else None, vmin=0, vmax=255)
        ax.set_title(title, fontsize=11)
        ax.axis("off")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".demo.png.tmp.png"
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(out / "demo.png")
    save_atomic(protected, out / "protected.png")
    save_atomic(received, out / "received.jpg", quality=95)
    save_atomic(found.recovered, out / "recovered.png")
    return numbers
