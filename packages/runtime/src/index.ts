// @latent-sft/runtime: ONNX Runtime sessions (CPU, CUDA); the only importer of onnxruntime-node.
export { Session, ortBinaryDir } from './session.js';
export type { Device, DType, HostTensor, SessionOptions } from './session.js';
export { DeviceTensor, allocCpu } from './device-tensor.js';
export type { TypedData } from './device-tensor.js';
export { DeviceSession } from './device-session.js';
export { summarizeProfile } from './profile.js';
export type { ProfileSummary } from './profile.js';
export type { DeviceSessionOptions, ValueInfo } from './device-session.js';
export { DeviceBinding } from './device-binding.js';
export { ResidentSession } from './resident.js';
export { DoubleBuffer, StatePair } from './double-buffer.js';
export { fusedKernelsStatus, liveTensorCount, resetTransferStats, transferStats } from './addon-info.js';
export { deviceSelfTest } from './self-test.js';
export type { SelfTestResult } from './self-test.js';
export type { TransferStats } from './native.js';
