// @latent-sft/runtime: ONNX Runtime sessions (CPU, CUDA); the only importer of onnxruntime-node.
export { Session, checkHostTensor, ortBinaryDir, zerosHost } from './session.js';
export type { Device, DType, HostTensor, SessionOptions } from './session.js';
export { DeviceTensor, allocCpu, uploadCpu } from './device-tensor.js';
export type { TypedData } from './device-tensor.js';
export { DeviceSession } from './device-session.js';
export { summarizeProfile } from './profile.js';
export type { ProfileSummary } from './profile.js';
export type { DeviceSessionOptions, ValueInfo } from './device-session.js';
export { DeviceBinding } from './device-binding.js';
export { DoubleBuffer, StatePair } from './double-buffer.js';
export { fusedKernelsStatus, liveTensorCount, ortInfo, resetTransferStats, transferStats } from './addon-info.js';
export { deviceSelfTest } from './self-test.js';
export type { SelfTestResult } from './self-test.js';
export { nativeAddonPath } from './native.js';
export type { OrtInfo, TransferStats } from './native.js';
