import { createApp, watch } from 'vue'

import App from './App.vue'
import { createConsoleI18n } from './i18n'
import { createConsoleRouter } from './router'
import { session } from './store/session'
import './styles.css'

const app = createApp(App)
const router = createConsoleRouter()
app.use(createConsoleI18n())
app.use(router)

// The API client updates the session; the router follows it.
watch(
  () => session.state.token,
  (token) => {
    const route = router.currentRoute.value
    if (!token && !route.meta.public) void router.replace({ name: 'login', query: { next: route.fullPath, expired: '1' } })
  },
)
watch(
  () => session.state.mustChangePassword,
  (required) => {
    const route = router.currentRoute.value
    if (required && !route.meta.public && route.name !== 'password') {
      void router.replace({ name: 'password', query: { next: route.fullPath } })
    }
  },
)

app.mount('#app')
