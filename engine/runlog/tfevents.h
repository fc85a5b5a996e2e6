/*
 * engine/runlog/tfevents.h — a TensorBoard event-file writer (scalars), without
 * TensorFlow: TFRecord framing around hand-encoded Event protocol buffers.
 *
 * File: <dir>/events.out.tfevents.<unix seconds>.<hostname> (".<k>" added when that
 * name exists). Each record: u64 LE length, u32 LE masked CRC-32C of those 8 bytes,
 * the data, u32 LE masked CRC-32C of the data. The first event carries
 * file_version "brain.Event:2"; every metrics record becomes one Event {wall_time,
 * step, summary {value {tag, simple_value}...}} (non-finite values are written as they
 * are: TensorBoard shows NaN/inf). Each event is flushed, so a process crash loses at
 * most the event being written.
 *
 * Resume: tfevents_open(dir, resume_step >= 0) starts a new file whose first event after
 * the version is a SessionLog START at step resume_step + 1, which makes TensorBoard
 * discard the events of the earlier files at steps > resume_step (written after the
 * checkpoint, before the crash).
 */
#ifndef RLVR_RUNLOG_TFEVENTS_H
#define RLVR_RUNLOG_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/runlog/metrics.h"

typedef struct tfevents tfevents;

int tfevents_open(tfevents **out, const char *dir, long resume_step, char *err, size_t errlen);
/* Path of the file being written. */
const char *tfevents_path(const tfevents *t);
/* One event with every value of the record as a scalar tagged by its name. */
int tfevents_write(tfevents *t, const metrics_rec *r, char *err, size_t errlen);
/* One scalar event. */
int tfevents_scalar(tfevents *t, const char *tag, long step, double wall_time, float value,
                    char *err, size_t errlen);
int tfevents_sync(tfevents *t, char *err, size_t errlen);
void tfevents_close(tfevents *t);

/* The TFRecord frame of data[0..n) into out[n + 16]. */
void tfevents_frame(const void *data, size_t n, unsigned char *out);

#endif
