// @latent-sft/runtime: ONNX Runtime sessions (CPU, CUDA); the only importer of onnxruntime-node.
export { Session, checkHostTensor, ortBinaryDir, zerosHost } from './session.js';
export type { Device, DType, HostTensor, SessionOptions } from './session.js';
export {
  DeviceBinding, DeviceSession, DeviceTensor, DoubleBuffer, StatePair,
  allocCpu, deviceSelfTest, fusedKernelsStatus, liveTensorCount, ortInfo, resetTransferStats, transferStats, uploadCpu,
} from './device.js';
export type { DeviceSessionOptions, SelfTestResult, TypedData, ValueInfo } from './device.js';
export { nativeAddonPath } from './native.js';
export type { OrtInfo, TransferStats } from './native.js';
