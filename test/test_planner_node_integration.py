"""The planner node as an integrator wires it (issue 12), over real DDS: an e-stop from any publisher, a
command every control tick for Servo, parameters that either apply or are refused, Servo's command type."""
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy wheels not installed")

from geometry_msgs.msg import TwistStamped  # noqa: E402
from node_harness import (  # noqa: E402
    PERIOD,
    TWIST,
    Streamer,
    activate,
    is_zero_twist,
    save_tiny,
    start_planner,
    wait_for,
)
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from ami_world_model.ros.planner_node import LATCHED_QOS  # noqa: E402

pytestmark = pytest.mark.ros
OK = TransitionCallbackReturn.SUCCESS


@pytest.fixture(scope="module", autouse=True)
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("ck") / "twist")


def _start(name, ckpt, **params):
    h = start_planner(name, ckpt, **params)
    h.collect(TwistStamped, TWIST)
    return h


def _set(h, **values):
    """``ros2 param set``: the node's real SetParameters service."""
    client = h.peer.create_client(SetParameters, "/planner_node/set_parameters")
    assert client.wait_for_service(timeout_sec=5.0)
    fut = client.call_async(SetParameters.Request(
        parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]))
    assert wait_for(fut.done, 5.0)
    return fut.result().results


def test_estop_from_a_plain_volatile_publisher_while_commands_flow(ckpt):
    h = _start("estop_volatile", ckpt)
    estop = h.peer.create_publisher(Bool, "/estop", 10)  # what `ros2 topic pub /estop ...` and PLC bridges use
    s = Streamer(h.image_pub)
    try:
        activate(h)
        s.start()
        assert wait_for(lambda: len(h.messages()) >= 3, 5.0), "no commands"
        assert wait_for(lambda: estop.get_subscription_count() > 0, 5.0), "the e-stop subscription never matched"
        zeros0, t0 = h.status_value("zero_commands_sent"), time.monotonic()
        estop.publish(Bool(data=True))
        assert wait_for(lambda: h.status_value("estop") is True, 3.0), h.status()
        time.sleep(5 * PERIOD)  # frames keep coming: the arm gets one zero, then nothing
        after = h.messages(t0)
        assert after and is_zero_twist(after[-1][1]) and len(after) <= 2, [(is_zero_twist(m), t - t0) for t, m in after]
        assert h.status_value("zero_commands_sent") == zeros0 + 1
        t1 = time.monotonic()
        time.sleep(3 * PERIOD)
        assert h.messages(t1) == [], "commands while e-stopped"
        estop.publish(Bool(data=False))
        assert wait_for(lambda: len(h.messages(t1)) >= 3, 5.0), "no resume after e-stop false"
    finally:
        s.stop()
        h.close()


def test_estop_latched_before_the_node_started_holds_it(ckpt):
    h = _start("estop_latched", ckpt)
    latched = h.peer.create_publisher(Bool, "/estop", LATCHED_QOS)
    latched.publish(Bool(data=True))  # before the node even subscribed
    s = Streamer(h.image_pub)
    try:
        activate(h)
        assert wait_for(lambda: h.status_value("estop") is True, 5.0), h.status()
        s.start()
        time.sleep(6 * PERIOD)
        assert h.messages() == [], "commanded while a latched e-stop was engaged"
        latched.publish(Bool(data=False))
        assert wait_for(lambda: len(h.messages()) >= 3, 5.0), "no commands after the latched e-stop released"
    finally:
        s.stop()
        h.close()


def test_a_command_every_tick_while_frames_come_slower(ckpt):
    # a 4 Hz camera under a 10 Hz control loop: Servo (incoming_command_timeout ~ one period) must still get
    # a command every period, the plan's next action between frames
    h = _start("cadence", ckpt, max_image_age_s=1.0)
    s = Streamer(h.image_pub, rate_hz=4.0)
    try:
        activate(h)
        s.start()
        assert wait_for(lambda: len(h.messages()) >= 2, 5.0)
        zeros0, t0 = h.status_value("zero_commands_sent"), time.monotonic()
        time.sleep(2.0)
        msgs = h.messages(t0)
        assert len(msgs) >= 14, f"{len(msgs)} commands in 2 s at 10 Hz with a 4 Hz camera"
        gaps = sorted(b[0] - a[0] for a, b in zip(msgs, msgs[1:]))
        assert gaps[len(gaps) // 2] < 1.5 * PERIOD, gaps
        assert h.status_value("zero_commands_sent") == zeros0, "stopped between frames"
        assert h.status_value("safety_state") == "commanding"
        # still stops on stale input
        s.stop()
        assert wait_for(lambda: h.status_value("safety_state") == "stale_image", 3.0), h.status()
    finally:
        s.stop()
        h.close()


def test_parameter_sets_apply_live_or_are_refused(ckpt):
    h = _start("params", ckpt)
    s = Streamer(h.image_pub)
    try:
        activate(h)
        s.start()
        assert wait_for(lambda: len(h.messages()) >= 3, 5.0)
        # a safety limit applies at once
        res = _set(h, max_linear_velocity_mps=0.02)
        assert res[0].successful, res[0].reason
        t0 = time.monotonic()
        assert wait_for(lambda: len(h.messages(t0)) >= 5, 5.0)
        for _, m in h.messages(t0)[1:]:  # [0] may have been formed before the set
            assert abs(m.twist.linear.x) <= 0.02 + 1e-9 and abs(m.twist.linear.y) <= 0.02 + 1e-9
        # a configure-time parameter is refused while configured, and keeps its value
        res = _set(h, **{"planner.num_samples": 32, "planner.top_k": 8})
        assert not res[0].successful and "configure" in res[0].reason
        assert h.node.get_parameter("planner.num_samples").value == 16
        res = _set(h, control_rate_hz=20.0)
        assert not res[0].successful
        # after cleanup it may be set, and configure uses it
        assert h.node.trigger_deactivate() == OK and h.node.trigger_cleanup() == OK
        res = _set(h, control_rate_hz=20.0)
        assert res[0].successful, res[0].reason
    finally:
        s.stop()
        h.close()


def test_servo_switch_retries_until_ready_and_checks_the_answer():
    # moveit_msgs has no wheel here: the switch's logic runs with a std_srvs/SetBool service standing in for
    # ServoCommandType (same shape: a request, a response with `success`), over real DDS
    from rclpy.executors import SingleThreadedExecutor

    from ami_world_model.ros.servo import ServoTwistSwitch

    node = rclpy.create_node("servo_switch_probe")
    server = rclpy.create_node("fake_servo")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    ex.add_node(server)
    try:
        answers = []
        switch = ServoTwistSwitch(node, "/fake_servo/switch_command_type", srv_type=SetBool,
                                  make_request=lambda: SetBool.Request(data=True), retry_s=0.1, timeout_s=5.0)
        switch.start()  # no service yet: it keeps trying
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.02)
        assert switch.result is None

        def handle(req, resp):
            answers.append(req.data)
            resp.success = len(answers) > 1  # refuse the first call
            return resp

        server.create_service(SetBool, "/fake_servo/switch_command_type", handle)
        end = time.monotonic() + 5.0
        while switch.result is None and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.02)
        assert answers == [True] and switch.result is False, "a refusal must be seen as a failure"
        switch.start()  # e.g. the next activation: the same client, tried again
        end = time.monotonic() + 5.0
        while switch.result is None and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.02)
        assert switch.result is True and len(answers) == 2
        gone = ServoTwistSwitch(node, "/nobody/switch_command_type", srv_type=SetBool,
                                make_request=lambda: SetBool.Request(data=True), retry_s=0.05, timeout_s=0.3)
        gone.start()
        end = time.monotonic() + 3.0
        while gone.result is None and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.02)
        assert gone.result is False, "a service that never comes must end in a logged failure"
    finally:
        ex.shutdown()
        node.destroy_node()
        server.destroy_node()


def test_without_servo_command_type_a_humble_servo_is_started(monkeypatch, capfd):
    # Humble's Servo has no switch_command_type: it needs <servo>/start_servo (std_srvs/Trigger). A real Trigger
    # service, in a namespace, stands in for Servo's; ServoCommandType is made unavailable as on Humble (here
    # moveit_msgs has no wheel anyway, but a machine with Jazzy's would otherwise take the other branch).
    from rclpy.executors import SingleThreadedExecutor
    from std_srvs.srv import Trigger

    from ami_world_model.ros import servo

    monkeypatch.setattr(servo, "servo_command_type", lambda: None)
    node = rclpy.create_node("humble_probe", namespace="cell3")
    server = rclpy.create_node("servo_node", namespace="cell3")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    ex.add_node(server)
    calls = []
    try:
        switch = servo.ServoTwistSwitch(node, "servo_node/switch_command_type", retry_s=0.1, timeout_s=5.0)
        assert switch.starts_servo and switch.service == "/cell3/servo_node/start_servo"

        def handle(req, resp):
            calls.append(1)
            resp.success, resp.message = True, "Servo started"
            return resp

        server.create_service(Trigger, "~/start_servo", handle)
        switch.start()
        end = time.monotonic() + 5.0
        while switch.result is None and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.02)
        assert switch.result is True and calls == [1]
        # no start service (a Jazzy Servo, the simulated cell): a logged, non-fatal outcome
        other = servo.ServoTwistSwitch(node, "/cell4/servo_node/switch_command_type", retry_s=0.05, timeout_s=0.3)
        other.start()
        end = time.monotonic() + 3.0
        while other.result is None and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.02)
        assert other.result is False and calls == [1]
        # the hints name the resolved services, not the raw relative name
        err = capfd.readouterr().err
        assert "ros2 service call /cell3/servo_node/switch_command_type moveit_msgs/srv/ServoCommandType" in err
        assert "/cell4/servo_node/start_servo not available" in err
    finally:
        ex.shutdown()
        node.destroy_node()
        server.destroy_node()


def test_a_model_with_a_pose_dynamics_head_is_planned_with_it_by_default(tmp_path):
    from ami_world_model.models.config import PoseDynamicsConfig, ReadoutConfig

    names = ["tool.x", "tool.y", "block.x", "block.y", "block_tip.x", "block_tip.y"]
    ckpt = save_tiny(tmp_path / "pose", readout=ReadoutConfig(names=names, mean=[0.0] * 6, std=[1.0] * 6, hidden=8),
                     pose_dynamics=PoseDynamicsConfig(frame=["block", "block_tip"], hidden=8))
    h = _start("pose_dynamics", ckpt)
    s = Streamer(h.image_pub)
    try:
        activate(h)
        s.start()
        assert wait_for(lambda: len(h.messages()) >= 3, 5.0), "no commands"
        assert h.status_value("planner_budget")["dynamics"] == "pose", h.status()
        assert h.status_value("safety_state") == "commanding", h.status()
    finally:
        s.stop()
        h.close()
