import { useEffect, useState, type FormEvent } from 'react'

type Todo = {
  id: string
  text: string
  done: boolean
}

const STORAGE_KEY = '{{PROJECT_NAME}}.todos'

function loadTodos(): Todo[] {
  try {
    const raw = localStorage.getItem(STORAGE_KEY)
    return raw ? (JSON.parse(raw) as Todo[]) : []
  } catch {
    return []
  }
}

function Counter() {
  const [count, setCount] = useState(0)
  return (
    <section className="card">
      <h2>Counter</h2>
      <p className="count">{count}</p>
      <div className="row">
        <button type="button" onClick={() => setCount((c) => c - 1)}>
          -1
        </button>
        <button type="button" onClick={() => setCount(0)}>
          Reset
        </button>
        <button type="button" onClick={() => setCount((c) => c + 1)}>
          +1
        </button>
      </div>
    </section>
  )
}

function TodoList() {
  const [todos, setTodos] = useState<Todo[]>(loadTodos)
  const [text, setText] = useState('')

  useEffect(() => {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(todos))
  }, [todos])

  function addTodo(event: FormEvent<HTMLFormElement>) {
    event.preventDefault()
    const trimmed = text.trim()
    if (!trimmed) return
    setTodos((list) => [...list, { id: crypto.randomUUID(), text: trimmed, done: false }])
    setText('')
  }

  function toggle(id: string) {
    setTodos((list) => list.map((t) => (t.id === id ? { ...t, done: !t.done } : t)))
  }

  function remove(id: string) {
    setTodos((list) => list.filter((t) => t.id !== id))
  }

  const remaining = todos.filter((t) => !t.done).length

  return (
    <section className="card">
      <h2>To-do</h2>
      <form className="row" onSubmit={addTodo}>
        <input
          aria-label="New to-do"
          placeholder="What needs doing?"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <button type="submit">Add</button>
      </form>
      <ul className="todos">
        {todos.map((todo) => (
          <li key={todo.id} className={todo.done ? 'done' : undefined}>
            <label>
              <input type="checkbox" checked={todo.done} onChange={() => toggle(todo.id)} />
              {todo.text}
            </label>
            <button type="button" className="link" onClick={() => remove(todo.id)}>
              Delete
            </button>
          </li>
        ))}
      </ul>
      <p className="muted">
        {remaining} of {todos.length} left
      </p>
    </section>
  )
}

export default function App() {
  return (
    <main className="app">
      <header>
        <h1>{{PROJECT_NAME}}</h1>
        <p className="muted">{{DESCRIPTION}}</p>
      </header>
      <div className="grid">
        <Counter />
        <TodoList />
      </div>
      <footer className="muted">
        Edit <code>src/App.tsx</code> and save: Vite reloads the page instantly.
      </footer>
    </main>
  )
}
