"""Checks ``[assessment]`` when a web node starts: bad weights stop the node with the
setting named, instead of a wrong ranking later."""

from __future__ import annotations

from hotline.assessment import AssessmentSettings, assessment_settings
from hotline.runtime import Runtime
from hotline.services import NodeOptions


class AssessmentCheck:
    name = "assessment"
    role = "web"
    order = 36

    def __init__(self, cfg: AssessmentSettings) -> None:
        self.cfg = cfg

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def describe(self) -> str:
        w = self.cfg
        return (f"unit assessment weights: response {w.response_weight}, resolution {w.resolution_weight}, "
                f"satisfaction {w.satisfaction_weight}")


def create_service(runtime: Runtime, options: NodeOptions) -> AssessmentCheck:
    return AssessmentCheck(assessment_settings(runtime.settings))
