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
