"""Map methods built on the engine's gradients: Eigen-CAM / Eigen-Grad-CAM and Decom-CAM."""

from cadcam_numeric.methods.decom import DecomCAMResult, decom_cam
from cadcam_numeric.methods.eigen import eigen_cam, eigen_grad_cam

__all__ = ["DecomCAMResult", "decom_cam", "eigen_cam", "eigen_grad_cam"]
