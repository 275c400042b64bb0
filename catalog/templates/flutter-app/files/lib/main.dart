import 'package:flutter/material.dart';

void main() {
  runApp(const App());
}

class App extends StatelessWidget {
  const App({super.key});

  static const _seed = Colors.indigo;

  @override
  Widget build(BuildContext context) {
    return MaterialApp(
      title: '{{PROJECT_NAME}}',
      debugShowCheckedModeBanner: false,
      theme: ThemeData(colorScheme: ColorScheme.fromSeed(seedColor: _seed)),
      darkTheme: ThemeData(
        colorScheme: ColorScheme.fromSeed(
          seedColor: _seed,
          brightness: Brightness.dark,
        ),
      ),
      home: const HomePage(),
    );
  }
}

/// The app shell: a bottom navigation bar switching between two screens.
/// An [IndexedStack] keeps both screens alive, so each keeps its state.
class HomePage extends StatefulWidget {
  const HomePage({super.key});

  @override
  State<HomePage> createState() => _HomePageState();
}

class _HomePageState extends State<HomePage> {
  int _tab = 0;
  int _count = 0;

  @override
  Widget build(BuildContext context) {
    return Scaffold(
      appBar: AppBar(
        title: Text(_tab == 0 ? '{{PROJECT_NAME}}' : 'To-do'),
      ),
      body: IndexedStack(
        index: _tab,
        children: [
          CounterScreen(count: _count),
          const TodoScreen(),
        ],
      ),
      floatingActionButton: _tab == 0
          ? FloatingActionButton(
              key: const Key('increment'),
              onPressed: () => setState(() => _count++),
              tooltip: 'Increment',
              child: const Icon(Icons.add),
            )
          : null,
      bottomNavigationBar: NavigationBar(
        selectedIndex: _tab,
        onDestinationSelected: (index) => setState(() => _tab = index),
        destinations: const [
          NavigationDestination(
            icon: Icon(Icons.home_outlined),
            selectedIcon: Icon(Icons.home),
            label: 'Counter',
          ),
          NavigationDestination(
            icon: Icon(Icons.list),
            label: 'List',
          ),
        ],
      ),
    );
  }
}

class CounterScreen extends StatelessWidget {
  const CounterScreen({super.key, required this.count});

  final int count;

  @override
  Widget build(BuildContext context) {
    final textTheme = Theme.of(context).textTheme;
    return Center(
      child: Column(
        mainAxisSize: MainAxisSize.min,
        children: [
          Text('You have pushed the button this many times:', style: textTheme.bodyLarge),
          const SizedBox(height: 8),
          Text('$count', key: const Key('count'), style: textTheme.displayMedium),
        ],
      ),
    );
  }
}

class Todo {
  Todo(this.title);

  final String title;
  bool done = false;
}

class TodoScreen extends StatefulWidget {
  const TodoScreen({super.key});

  @override
  State<TodoScreen> createState() => _TodoScreenState();
}

class _TodoScreenState extends State<TodoScreen> {
  final _todos = <Todo>[];
  final _controller = TextEditingController();

  @override
  void dispose() {
    _controller.dispose();
    super.dispose();
  }

  void _add() {
    final title = _controller.text.trim();
    if (title.isEmpty) return;
    setState(() => _todos.add(Todo(title)));
    _controller.clear();
  }

  void _remove(Todo todo) {
    final index = _todos.indexOf(todo);
    setState(() => _todos.removeAt(index));
    ScaffoldMessenger.of(context)
      ..hideCurrentSnackBar()
      ..showSnackBar(
        SnackBar(
          content: Text('Deleted "${todo.title}"'),
          action: SnackBarAction(
            label: 'Undo',
            onPressed: () => setState(() => _todos.insert(index, todo)),
          ),
        ),
      );
  }

  @override
  Widget build(BuildContext context) {
    final remaining = _todos.where((t) => !t.done).length;
    return Column(
      children: [
        Padding(
          padding: const EdgeInsets.fromLTRB(16, 16, 8, 8),
          child: Row(
            children: [
              Expanded(
                child: TextField(
                  key: const Key('new-todo'),
                  controller: _controller,
                  decoration: const InputDecoration(
                    labelText: 'New item',
                    border: OutlineInputBorder(),
                  ),
                  textInputAction: TextInputAction.done,
                  onSubmitted: (_) => _add(),
                ),
              ),
              IconButton(
                key: const Key('add-todo'),
                icon: const Icon(Icons.add_circle),
                iconSize: 32,
                tooltip: 'Add',
                onPressed: _add,
              ),
            ],
          ),
        ),
        Padding(
          padding: const EdgeInsets.symmetric(horizontal: 16),
          child: Align(
            alignment: Alignment.centerLeft,
            child: Text('$remaining of ${_todos.length} left'),
          ),
        ),
        Expanded(
          child: _todos.isEmpty
              ? const Center(child: Text('Nothing to do yet. Add an item above.'))
              : ListView.builder(
                  itemCount: _todos.length,
                  itemBuilder: (context, index) {
                    final todo = _todos[index];
                    return Dismissible(
                      key: ObjectKey(todo),
                      direction: DismissDirection.endToStart,
                      background: Container(
                        color: Theme.of(context).colorScheme.errorContainer,
                        alignment: Alignment.centerRight,
                        padding: const EdgeInsets.only(right: 24),
                        child: const Icon(Icons.delete),
                      ),
                      onDismissed: (_) => _remove(todo),
                      child: CheckboxListTile(
                        value: todo.done,
                        onChanged: (value) => setState(() => todo.done = value ?? false),
                        title: Text(
                          todo.title,
                          style: todo.done
                              ? const TextStyle(decoration: TextDecoration.lineThrough)
                              : null,
                        ),
                        controlAffinity: ListTileControlAffinity.leading,
                      ),
                    );
                  },
                ),
        ),
      ],
    );
  }
}
