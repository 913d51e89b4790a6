// The device-storage playback page's words, in its own (lazily loaded) chunk rather than in the
// first page's bundle: DevicePlaybackView merges them into the console's messages when it opens.

const en = {
  title: 'Device storage: {name}',
  platform: 'Platform recordings',
  fromDevice: 'Device storage',
  summary: '{day}: {n} recording(s) on the device, {length} in all. Click the bar or a recording to play it from the device.',
  partial: 'The device sent {received} of the {expected} recordings it announced: the list may be incomplete.',
  emptyTitle: 'The device has no recordings this day',
  emptyHint: 'The device keeps what it records itself (on its card, disk or NVR). Pick another day, or look at the platform recordings.',
  listError: 'The device did not give its recording list: {message}',
  range: 'Asked the device for {from} – {to}',
  pause: 'Pause',
  resume: 'Resume',
  controlError: 'The device did not carry it out: {message}',
  recordType: { time: 'scheduled', alarm: 'alarm', manual: 'manual', all: 'all' },
  states: {
    idle: 'Click the bar or a recording to play it from the device',
    starting: 'Asking the device for its recording…',
    connecting: 'Connecting to the media node…',
    buffering: 'Waiting for the first picture…',
    playing: 'Playing from the device',
    paused: 'Paused on the device',
    ended: 'The device reached the end of the range',
    failed: 'Cannot play',
  },
}

const zhCN: typeof en = {
  title: '设备录像：{name}',
  platform: '平台录像',
  fromDevice: '设备录像',
  summary: '{day}：设备上有 {n} 段录像，共 {length}。点击时间轴或录像列表，即从设备回放。',
  partial: '设备声明有 {expected} 段录像，只发来 {received} 段：列表可能不全。',
  emptyTitle: '设备当天没有录像',
  emptyHint: '设备录像是设备自己保存的录像（存储卡、硬盘或 NVR）。请换一天，或查看平台录像。',
  listError: '设备没有返回录像列表：{message}',
  range: '向设备请求 {from} – {to}',
  pause: '暂停',
  resume: '继续',
  controlError: '设备未执行：{message}',
  recordType: { time: '定时', alarm: '告警', manual: '手动', all: '全部' },
  states: {
    idle: '点击时间轴或录像列表，从设备回放',
    starting: '正在向设备请求录像…',
    connecting: '正在连接媒体节点…',
    buffering: '等待第一帧画面…',
    playing: '设备回放中',
    paused: '设备已暂停',
    ended: '设备已播放到请求范围的末尾',
    failed: '无法播放',
  },
}

export const devicePlaybackMessages = { en, 'zh-CN': zhCN }
