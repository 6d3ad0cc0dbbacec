from glob import glob

from setuptools import find_packages, setup

package_name = "ami_world_model"
# Only the shipped default model: models/ also holds ignored training artefacts (*.train.*, exports).
SHIPPED_MODEL = ["models/default.json", "models/default.safetensors"]

setup(
    name=package_name,
    version="0.1.0",
    # sim/assets has no __init__.py: listed explicitly so its MuJoCo XML is package data, not a stray folder.
    packages=find_packages(exclude=["test", "test.*"]) + [package_name + ".sim.assets"],
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        ("share/" + package_name + "/models", SHIPPED_MODEL),
    ],
    package_data={package_name + ".sim.assets": ["*.xml"]},
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="ami_world_model maintainers",
    maintainer_email="maintainers@ami-world-model.invalid",
    description="JEPA world model, latent MPC and a safe planner node for robot arms (ROS 2).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "planner_node = ami_world_model.ros.planner_node:main",
            "sim_cell_node = ami_world_model.ros.sim_cell_node:main",
            "ami-wm = ami_world_model.cli:main",
        ],
    },
)
