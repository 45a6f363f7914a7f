"""Issue 9 bug 1: the label-noise API and `lilaw-edu run` work without OpenCV (cv2 is an optional extra).

Each check runs in a fresh interpreter where ``sys.modules["cv2"] = None``, so ``import cv2``
raises ImportError exactly as on a machine without opencv-python.
"""
import subprocess
import sys
import textwrap

BLOCK_CV2 = "import sys; sys.modules['cv2'] = None\n"


def run_without_cv2(code: str, tmp_path=None) -> subprocess.CompletedProcess:
    script = BLOCK_CV2 + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)


def test_label_noise_and_non_cv2_input_noise_without_cv2():
    proc = run_without_cv2("""
        import torch
        from lilaw_edu import inject_label_noise, inject_input_noise
        import lilaw_edu.training.fit, lilaw_edu.cli  # what `lilaw-edu run` imports
        g = torch.Generator().manual_seed(0)
        y = torch.arange(100) % 10
        noisy, mask = inject_label_noise(y, "uniform", 0.3, 10, generator=g, always_change=True)
        assert int(mask.sum()) == 30 and int((noisy != y).sum()) == 30
        x = torch.rand(8, 3, 32, 32, generator=g)
        out, m = inject_input_noise(x, "zoom_shift", 0.5, generator=g)
        assert int(m.sum()) == 4 and torch.equal(out[~m], x[~m]) and not torch.equal(out[m], x[m])
        assert "cv2" not in [k for k, v in sys.modules.items() if v is not None]
        print("ok")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_domain_shift_without_cv2_names_the_extra():
    proc = run_without_cv2("""
        import torch
        from lilaw_edu import inject_input_noise
        g = torch.Generator().manual_seed(0)
        try:
            inject_input_noise(torch.rand(4, 3, 16, 16), "domain_shift", 1.0, generator=g)
        except ImportError as err:
            print(str(err))
        else:
            print("no error")
    """)
    assert proc.returncode == 0, proc.stderr
    message = proc.stdout.strip()
    assert "\\n" not in message and "lilaw-edu[images]" in message and "cv2" in message, message


def test_cli_run_without_cv2(tmp_path):
    proc = run_without_cv2("""
        from lilaw_edu.cli import main
        code = main(["run", "--preset", "cpu-digits", "--noise", "uniform", "--rate", "0.3", "--epochs", "1",
                     "--max-train", "200", "--out", "out", "--quiet"])
        print("exit", code)
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "exit 0" in proc.stdout and (tmp_path / "out" / "results.json").is_file()
