"""Regenerate the speech set shipped in ``src/unrolled/nmf/speech/`` (needs the ``espeak-ng`` program).

Synthesises 39 sentences (Harvard sentences, IEEE 1969 lists 1-4) with eSpeak NG, one voice per
utterance, speaking rate and pitch drawn from a fixed seed; resamples 22.05 kHz -> 8 kHz
(``scipy.signal.resample_poly``), peak-normalises to 0.7, trims silence and stores 16-bit FLAC
(``soundfile``) plus ``manifest.json`` (text, voice, rate, pitch, split, the exact command).
Train, validation and test use different sentences *and* different voices.

Run: ``python scripts/generate_nmf_speech.py [--out src/unrolled/nmf/speech]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

FS = 8000
SENTENCES = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.", "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.", "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.", "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.", "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.",
]
#: split -> (voices, utterances per voice); voices never cross splits.
SPLITS = {
    "train": (["en-us+m3", "en-gb+f2", "en-us+f4", "en-gb-scotland+m1", "en-029+m5"], 5),
    "val": (["en-us+f1", "en-gb-x-rp+m2"], 3),
    "test": (["en-gb+f5", "en-us+m7"], 4),
}


def synthesise(text: str, voice: str, rate: int, pitch: int, tmp: Path) -> tuple[np.ndarray, list[str]]:
    wav = tmp / "u.wav"
    cmd = ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(wav), text]
    subprocess.run(cmd, check=True, capture_output=True)
    x, fs = sf.read(wav, dtype="float64")
    g = gcd(FS, fs)
    y = resample_poly(x, FS // g, fs // g)
    loud = np.flatnonzero(np.abs(y) > 0.01 * np.abs(y).max())
    y = y[max(loud[0] - 400, 0): loud[-1] + 400]
    return 0.7 * y / np.abs(y).max(), cmd


def main(out: Path) -> None:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2025)
    manifest, s = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for split, (voices, per_voice) in SPLITS.items():
            for voice in voices:
                for _ in range(per_voice):
                    text = SENTENCES[s]
                    rate, pitch = int(rng.integers(135, 186)), int(rng.integers(30, 71))
                    y, cmd = synthesise(text, voice, rate, pitch, Path(tmp))
                    name = f"{split}_{s:02d}.flac"
                    sf.write(out / name, y, FS, subtype="PCM_16")
                    manifest.append({"file": name, "split": split, "text": text, "voice": voice, "rate": rate,
                                     "pitch": pitch, "seconds": round(len(y) / FS, 3),
                                     "command": " ".join(cmd[:-2] + ["<file>.wav", repr(text)])})
                    s += 1
    (out / "manifest.json").write_text(json.dumps({"fs": FS, "utterances": manifest}, indent=1))
    print(f"{len(manifest)} utterances, {sum(m['seconds'] for m in manifest):.1f} s, in {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/unrolled/nmf/speech")
    main(parser.parse_args().out)
