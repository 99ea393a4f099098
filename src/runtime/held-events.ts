// Events held back while ticks are due (docs/adr/0012-tick-lane.md): an Event is an API write,
// and while Pods are due every API write competes with their creates on the API server.
//
// Guarantees:
// - `event()` passes the Event on at once while `holding()` is false; otherwise it is kept, in
//   order, and `release()` passes every kept one on, in that order.
// - At most `max` are kept (memory stays bounded): beyond that, an Event passes on at once.
// - Never throws, like the recorder it wraps.
//
// It does not release by itself: the owner calls `release()` when the due work has drained, and
// when it stops.
import type { EventRecorder, EventType, InvolvedObject } from './events.ts';

export class HeldEvents implements EventRecorder {
  readonly #inner: EventRecorder;
  readonly #holding: () => boolean;
  readonly #max: number;
  #held: [InvolvedObject, EventType, string, string][] = [];

  constructor(inner: EventRecorder, holding: () => boolean, max = 10_000) {
    this.#inner = inner;
    this.#holding = holding;
    this.#max = max;
  }

  event(obj: InvolvedObject, type: EventType, reason: string, message: string): void {
    if (this.#holding() && this.#held.length < this.#max) {
      this.#held.push([obj, type, reason, message]);
      return;
    }
    this.#inner.event(obj, type, reason, message);
  }

  /** Kept Events not yet passed on. */
  get size(): number {
    return this.#held.length;
  }

  release(): void {
    const held = this.#held;
    this.#held = [];
    for (const [obj, type, reason, message] of held) this.#inner.event(obj, type, reason, message);
  }
}
