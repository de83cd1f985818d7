// Every benchmark is short (the CI machine has 2 cores): about half a second of samples after one
// warm-up call, at least 3 samples. Compare results between commits on the same machine only.
export const SHORT = { time: 500, iterations: 3, warmupTime: 0, warmupIterations: 1 } as const;
