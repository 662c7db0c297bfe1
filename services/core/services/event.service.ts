import type { AppEvent, EventRepository } from '../repositories/event.repository.js';

/** Live events for people's screens: only those of the sites a listener may see. */
export class EventService {
  constructor(private readonly events: EventRepository) {}

  /** Calls `listener` with every event of one of `siteIds`; resolves once subscribed, with the function that stops it. */
  subscribe(siteIds: ReadonlySet<string>, listener: (event: AppEvent) => void): Promise<() => void> {
    return this.events.subscribe((event) => {
      if (siteIds.has(event.siteId)) listener(event);
    });
  }
}
