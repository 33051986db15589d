// The models speak the DP8390's own vocabulary (registers, CommandEffect, DMAKind, BufferMap): one
// definition, re-exported so the monitor and the tools see the same types.
@_exported import DP8390
