"""Process-wide test environment: headless rendering and a DDS domain of our own.

Each pytest process picks its own ROS_DOMAIN_ID so parallel runs on one machine (developers, CI) never
see each other's topics; subprocess-started nodes inherit it through os.environ.
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
if "AMI_WM_TEST_DOMAIN_FIXED" not in os.environ:
    # 0..232 are valid domain ids on Linux with default ports; stay in a band others rarely use.
    os.environ["ROS_DOMAIN_ID"] = str(100 + os.getpid() % 100)
    os.environ["AMI_WM_TEST_DOMAIN_FIXED"] = "1"

import pytest  # noqa: E402 - after the environment above, which imports must see


@pytest.fixture(scope="module")
def cell():
    """One simulated cell per test module (MuJoCo model load and renderer are the slow part)."""
    from ami_world_model.sim.cell import SimCell

    c = SimCell()
    yield c
    c.close()


@pytest.fixture
def one_torch_thread():
    """Train small models with one torch thread. The test machine is shared by parallel test runs, and two
    OpenMP threads spinning against other processes ran these small models >10x slower; one thread degrades
    only in proportion to the load."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
