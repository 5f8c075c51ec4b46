"""Audio features checked against their formulas (and torch.stft / scipy's DCT when installed)."""
import numpy as np
import pytest

from tinymm.data import audio_features as af


def test_frame_shapes_and_content(rng):
    x = np.arange(10.0)
    f = af.frame(x, frame_length=4, hop_length=2, center=False)
    assert f.shape == (4, 4)
    assert f[1].tolist() == [2, 3, 4, 5]
    f[0, 0] = -1.0  # a writable copy, not a view of x
    assert x[0] == 0.0
    # center=True: frame_length // 2 reflected samples on each side, frame t centred on t * hop
    fc = af.frame(x, frame_length=4, hop_length=2)
    assert fc.shape == (1 + (10 + 4 - 4) // 2, 4)
    assert fc[0].tolist() == [2, 1, 0, 1]
    assert af.frame(x, 4, 2, pad_mode="constant")[0].tolist() == [0, 0, 0, 1]
    xb = rng.standard_normal((3, 50)).astype(np.float32)
    fb = af.frame(xb, 16, 5)
    assert fb.shape == (3, 1 + (50 + 16 - 16) // 5, 16) and fb.dtype == np.float32
    np.testing.assert_array_equal(fb[1], af.frame(xb[1], 16, 5))


def test_hann_window_formula():
    n = 16
    k = np.arange(n)
    np.testing.assert_allclose(af.hann_window(n), 0.5 - 0.5 * np.cos(2 * np.pi * k / n), atol=1e-15)
    np.testing.assert_allclose(af.hann_window(n, periodic=False), 0.5 - 0.5 * np.cos(2 * np.pi * k / (n - 1)), atol=1e-15)
    sym = af.hann_window(9, periodic=False)
    np.testing.assert_allclose(sym, sym[::-1], atol=1e-15)
    assert sym[0] == 0 and sym[4] == 1
    # periodic Hann at 50 % overlap sums to a constant (perfect overlap-add)
    w = af.hann_window(8)
    assert np.allclose(w[:4] + w[4:], 1.0)
    assert af.hann_window(1).tolist() == [1.0] and af.hann_window(0).shape == (0,)


def test_parseval_single_frame_rectangular_window(rng):
    n = 64
    x = rng.standard_normal(n)
    spec = af.stft(x, n_fft=n, hop_length=n, window=None, center=False)  # (n/2+1, 1), one frame
    assert spec.shape == (n // 2 + 1, 1)
    X = spec[:, 0]
    # Rebuild the full spectrum's energy from the one-sided half: bins 1..n/2-1 appear twice.
    energy = (np.abs(X[0]) ** 2 + 2 * np.sum(np.abs(X[1:-1]) ** 2) + np.abs(X[-1]) ** 2) / n
    np.testing.assert_allclose(energy, np.sum(x**2), rtol=1e-12)
    # and against the DFT definition itself
    k = np.arange(n // 2 + 1)[:, None]
    dft = np.exp(-2j * np.pi * k * np.arange(n)[None, :] / n) @ x
    np.testing.assert_allclose(X, dft, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pure_tone_peaks_in_its_bin(dtype):
    sr, n_fft, k0 = 16000, 512, 37  # a tone exactly on bin 37
    f0 = k0 * sr / n_fft
    t = np.arange(sr // 4) / sr
    x = np.sin(2 * np.pi * f0 * t).astype(dtype)
    spec = af.stft(x, n_fft=n_fft, hop_length=128)
    assert spec.dtype == (np.complex64 if dtype == np.float32 else np.complex128)
    assert spec.shape == (n_fft // 2 + 1, 1 + len(x) // 128)
    power = af.power_spectrogram(x, n_fft=n_fft, hop_length=128)
    np.testing.assert_allclose(power, np.abs(spec) ** 2, rtol=1e-4)
    # interior frames (the first and last ones hold reflected padding)
    assert (np.argmax(power[:, 2:-2], axis=0) == k0).all()
    # A tone between bins peaks at the nearest one.
    x2 = np.sin(2 * np.pi * (k0 + 0.3) * sr / n_fft * t)
    assert (np.argmax(af.power_spectrogram(x2, n_fft=n_fft, hop_length=128)[:, 2:-2], axis=0) == k0).all()


def test_stft_window_shorter_than_n_fft_and_batch(rng):
    x = rng.standard_normal((2, 300))
    spec = af.stft(x, n_fft=64, hop_length=16, win_length=40)
    assert spec.shape == (2, 33, 1 + 300 // 16)
    np.testing.assert_allclose(spec[1], af.stft(x[1], n_fft=64, hop_length=16, win_length=40))
    # same as an explicit zero-padded window
    w = np.zeros(64)
    w[12:52] = af.hann_window(40)
    np.testing.assert_allclose(spec, af.stft(x, n_fft=64, hop_length=16, window=w), atol=1e-12)
    np.testing.assert_allclose(
        af.stft(x, 64, 16, normalized=True), af.stft(x, 64, 16) / 8.0, atol=1e-12
    )


@pytest.mark.filterwarnings("ignore:A window was not provided")
def test_stft_matches_torch(rng):
    torch = pytest.importorskip("torch", reason="torch is not installed: the torch.stft cross-check is skipped")
    x = rng.standard_normal((3, 1000))
    for n_fft, hop, win, center, mode in [
        (400, 160, None, True, "reflect"),
        (256, 64, 200, True, "constant"),
        (128, 50, None, False, "reflect"),
        (97, 31, 60, True, "reflect"),
    ]:
        wl = n_fft if win is None else win
        ours = af.stft(x, n_fft, hop, win, window="hann", center=center, pad_mode=mode)
        ref = torch.stft(
            torch.from_numpy(x), n_fft, hop_length=hop, win_length=wl,
            window=torch.hann_window(wl, dtype=torch.float64), center=center, pad_mode=mode,
            return_complex=True,
        ).detach().numpy()
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=1e-9)
    # float32, rectangular window (torch's window=None)
    x32 = x[0].astype(np.float32)
    ref = torch.stft(torch.from_numpy(x32), 64, hop_length=16, return_complex=True).detach().numpy()
    np.testing.assert_allclose(af.stft(x32, 64, 16, window=None), ref, atol=1e-4)


def test_mel_scales_formulas():
    f = np.array([0.0, 200.0, 700.0, 1000.0, 4000.0, 8000.0])
    np.testing.assert_allclose(af.hz_to_mel(f), 2595 * np.log10(1 + f / 700))
    np.testing.assert_allclose(af.mel_to_hz(af.hz_to_mel(f)), f, atol=1e-9)
    slaney = af.hz_to_mel(f, htk=False)
    np.testing.assert_allclose(slaney[:4], f[:4] * 3 / 200)  # linear up to 1 kHz: 15 mel at 1 kHz
    np.testing.assert_allclose(slaney[4:], 15 + 27 * np.log(f[4:] / 1000) / np.log(6.4))
    np.testing.assert_allclose(af.mel_to_hz(slaney, htk=False), f, atol=1e-9)
    assert af.hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.1)  # HTK's anchor: 1 kHz ≈ 1000 mel


@pytest.mark.parametrize("htk", [True, False])
def test_mel_filterbank_triangles(htk):
    sr, n_fft, n_mels, fmin, fmax = 16000, 512, 40, 50.0, 7000.0
    fb = af.mel_filterbank(sr, n_fft, n_mels, fmin=fmin, fmax=fmax, htk=htk)
    assert fb.shape == (n_mels, n_fft // 2 + 1)
    assert (fb >= 0).all() and (fb <= 1 + 1e-12).all()
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft
    # corner frequencies equally spaced in mel, computed here from the formulas themselves
    if htk:
        mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
        hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    else:
        mel = lambda f: np.where(f < 1000, 3 * f / 200, 15 + 27 * np.log(np.maximum(f, 1e-9) / 1000) / np.log(6.4))  # noqa: E731
        hz = lambda m: np.where(m < 15, 200 * m / 3, 1000 * np.exp((m - 15) * np.log(6.4) / 27))  # noqa: E731
    corners = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    for m in range(n_mels):
        lo, c, hi = corners[m], corners[m + 1], corners[m + 2]
        inside = (bins > lo) & (bins < hi)
        assert (fb[m, ~inside] == 0).all()  # zero outside its triangle
        expected = np.where(bins <= c, (bins - lo) / (c - lo), (hi - bins) / (hi - c))
        np.testing.assert_allclose(fb[m, inside], expected[inside], atol=1e-12)
        assert abs(bins[np.argmax(fb[m])] - c) <= sr / n_fft  # peak at the nearest bin to its centre
    # centres increase, the range is covered: between the first and last centre the filters sum to 1
    span = (bins >= corners[1]) & (bins <= corners[-2])
    np.testing.assert_allclose(fb[:, span].sum(axis=0), 1.0, atol=1e-12)
    assert (fb[:, (bins <= fmin) | (bins >= fmax)] == 0).all()
    # Slaney area normalisation: each triangle's peak is 2 / width
    fbn = af.mel_filterbank(sr, n_fft, n_mels, fmin=fmin, fmax=fmax, htk=htk, norm="slaney")
    np.testing.assert_allclose(fbn, fb * (2 / (corners[2:] - corners[:-2]))[:, None], rtol=1e-12)


def test_log_mel_and_mel_spectrogram(rng):
    sr = 8000
    x = rng.standard_normal((2, 4000)).astype(np.float32)
    mel = af.mel_spectrogram(x, sr, n_fft=256, hop_length=80, n_mels=32)
    power = af.power_spectrogram(x, n_fft=256, hop_length=80)
    fb = af.mel_filterbank(sr, 256, 32)
    assert mel.shape == (2, 32, 1 + 4000 // 80) and mel.dtype == np.float32
    np.testing.assert_allclose(mel, np.einsum("mf,bft->bmt", fb, power), rtol=1e-4)
    logmel = af.log_mel_spectrogram(x, sr, n_fft=256, hop_length=80, n_mels=32)
    np.testing.assert_allclose(logmel, np.log(np.maximum(mel, 1e-10)), rtol=1e-5, atol=1e-5)
    silent = af.log_mel_spectrogram(np.zeros(1000), sr, n_fft=256, n_mels=32, amin=1e-8)
    np.testing.assert_allclose(silent, np.log(1e-8))


def test_dct_matches_formula_and_scipy(rng):
    n = 23
    x = rng.standard_normal((4, n))
    d = af.dct_matrix(n)
    np.testing.assert_allclose(d @ d.T, np.eye(n), atol=1e-12)  # orthonormal
    i = np.arange(n)
    ref = np.stack(
        [np.sqrt((1 if k == 0 else 2) / n) * (x * np.cos(np.pi * (i + 0.5) * k / n)).sum(-1) for k in range(n)], -1
    )
    np.testing.assert_allclose(af.dct(x), ref, atol=1e-12)
    np.testing.assert_allclose(af.dct(x.T, axis=0, n_out=5), ref.T[:5], atol=1e-12)
    scipy_fft = pytest.importorskip("scipy.fft", reason="scipy is not installed: the scipy DCT cross-check is skipped")
    np.testing.assert_allclose(af.dct(x), scipy_fft.dct(x, type=2, norm="ortho", axis=-1), atol=1e-12)


def test_mfcc_is_dct_of_log_mel(rng):
    sr = 16000
    x = rng.standard_normal((2, 3000))
    m = af.mfcc(x, sr, n_mfcc=13, n_fft=400, hop_length=160, n_mels=40)
    assert m.shape == (2, 13, 1 + 3000 // 160)
    logmel = af.log_mel_spectrogram(x, sr, n_fft=400, hop_length=160, n_mels=40)
    np.testing.assert_allclose(m, af.dct(logmel, axis=-2, n_out=13), atol=1e-10)
    np.testing.assert_allclose(m[1], af.mfcc(x[1], sr, n_mfcc=13, n_fft=400, hop_length=160, n_mels=40), atol=1e-10)
    assert af.mfcc(x.astype(np.float32), sr, n_mels=40).dtype == np.float32


def test_bad_input_raises_named_errors():
    with pytest.raises(ValueError, match=r"stft: n_fft=400 is larger than the padded signal length 100"):
        af.stft(np.zeros(100), n_fft=400, center=False)
    with pytest.raises(ValueError, match="stft: n_fft must be a positive int, got 0"):
        af.stft(np.zeros(100), n_fft=0)
    with pytest.raises(ValueError, match="reflect padding"):
        af.stft(np.zeros(100), n_fft=400)
    with pytest.raises(TypeError, match="real signal"):
        af.stft(np.zeros(100, complex), n_fft=16)
    with pytest.raises(ValueError, match="scalar"):
        af.stft(np.float32(1.0), n_fft=16)
    with pytest.raises(ValueError, match="win_length=32 is larger than n_fft=16"):
        af.stft(np.zeros(100), n_fft=16, win_length=32)
    with pytest.raises(ValueError, match="window has 10 samples"):
        af.stft(np.zeros(100), n_fft=16, win_length=12, window=np.ones(10))
    with pytest.raises(ValueError, match="pad_mode"):
        af.frame(np.zeros(100), 16, 4, pad_mode="mirror")
    with pytest.raises(ValueError, match="fmin < fmax"):
        af.mel_filterbank(16000, 512, 40, fmin=9000)
    with pytest.raises(ValueError, match="hold no FFT bin"):
        af.mel_filterbank(16000, 64, 128)
    with pytest.raises(ValueError, match="n_mfcc=50 is larger than n_mels=40"):
        af.mfcc(np.zeros(1000), 16000, n_mfcc=50, n_mels=40)
    with pytest.raises(ValueError, match="power"):
        af.power_spectrogram(np.zeros(1000), power=0)
