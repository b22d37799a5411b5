// File: pggitops/export.h
//
// PGGITOPS_EXPORT marks the symbols of the public API. Everything else in
// libpggitops is built with hidden visibility.
#ifndef PGGITOPS_INCLUDE_EXPORT_H_
#define PGGITOPS_INCLUDE_EXPORT_H_

#if defined(PGGITOPS_BUILDING)
#define PGGITOPS_EXPORT __attribute__((visibility("default")))
#else
#define PGGITOPS_EXPORT
#endif

#endif  // PGGITOPS_INCLUDE_EXPORT_H_
