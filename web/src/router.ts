import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'

import { loadMe } from './store/me'
import { session } from './store/session'
import AppLayout from './components/AppLayout.vue'
import ChannelsView from './views/ChannelsView.vue'
import LoginView from './views/LoginView.vue'

declare module 'vue-router' {
  interface RouteMeta {
    /** Reachable without logging in. */
    public?: boolean
  }
}

const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: LoginView, meta: { public: true } },
  { path: '/password', name: 'password', component: () => import('./views/PasswordView.vue') },
  {
    path: '/',
    component: AppLayout,
    children: [
      // The landing page: the guard below sends field technicians (maintainer) to their own
      // work orders, everyone else to the channels.
      { path: '', name: 'home', component: ChannelsView },
      { path: 'channels', name: 'channels', component: ChannelsView },
      // ?device=ID when the channel ID is reported by more than one device.
      { path: 'channels/:id/live', name: 'live', component: () => import('./views/LiveView.vue'), props: true },
      { path: 'channels/:id/playback', name: 'playback', component: () => import('./views/PlaybackView.vue'), props: true },
      // Footage on the device's own storage (RecordInfo, Playback INVITE).
      {
        path: 'channels/:id/device-playback',
        name: 'device-playback',
        component: () => import('./views/DevicePlaybackView.vue'),
        props: true,
      },
      { path: 'tree', name: 'tree', component: () => import('./views/TreeView.vue') },
      { path: 'wall', name: 'wall', component: () => import('./views/WallView.vue') },
      { path: 'health', name: 'health', component: () => import('./views/HealthView.vue') },
      // ?alarm=ID opens that alarm's drawer; ?tab=events the platform's events.
      { path: 'alarms', name: 'alarms', component: () => import('./views/AlarmsView.vue') },
      // ?mine=1 the caller's own; ?order=ID opens that order's drawer; ?tab=teams the teams.
      { path: 'work-orders', name: 'work-orders', component: () => import('./views/WorkOrdersView.vue') },
      { path: 'vqd', name: 'vqd', component: () => import('./views/VqdView.vue') },
      { path: 'map', name: 'map', component: () => import('./views/MapView.vue') },
      { path: 'account', name: 'account', component: () => import('./views/AccountView.vue') },
      { path: 'devices/:id', name: 'device', component: () => import('./views/DeviceView.vue'), props: true },
    ],
  },
  { path: '/:unknown(.*)*', redirect: { name: 'channels' } },
]

export function createConsoleRouter() {
  const router = createRouter({ history: createWebHistory(), routes })
  router.beforeEach(async (to) => {
    if (to.meta.public) return true
    if (!session.loggedIn) {
      const landing = (to.name === 'channels' || to.name === 'home') && Object.keys(to.query).length === 0
      return { name: 'login', query: landing ? {} : { next: to.fullPath } }
    }
    if (to.name === 'home') {
      const me = await loadMe()
      return me?.role === 'maintainer' ? { name: 'work-orders', query: { mine: '1' } } : { name: 'channels' }
    }
    if (session.state.mustChangePassword && to.name !== 'password') return { name: 'password', query: { next: to.fullPath } }
    return true
  })
  return router
}
